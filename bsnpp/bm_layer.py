"""The Boundary-Matching (BM) layer of BMN, dense (as published) and fused (exact, light).

BMN (Lin et al., "BMN: Boundary-Matching Network for Temporal Action Proposal Generation",
ICCV 2019), Section 3.2 "Boundary-Matching Mechanism", paragraph "BM layer": from a temporal
feature sequence X [C, T], build a BM feature map [C, N, D, T] where cell (d, s) holds N features
sampled by linear interpolation over the proposal (start s, duration d) extended on both sides.
The official code (JJBOY's BMN-Boundary-Matching-Network ``models.py``, ported by mmaction2's
``localizers/bmn.py``) does this with one matmul against a precomputed mask, follows it with
``Conv3d(C -> 512, kernel (N, 1, 1), stride (N, 1, 1))`` and squeezes the sample axis.
BSN++ reuses the layer unchanged.

Mask convention (identical to the official ``_get_interp1d_mask``)
-------------------------------------------------------------------
``mask[t, n, d, s]``, shape [T, N, D=T, S=T], float32:

* ``s`` is the start index and ``d`` the duration index; the proposal covers snippets
  ``s .. s + d`` (end index ``e = s + d``; its length is ``center_len = d + 1`` snippets).
* The sampled segment is ``[s - r * (d + 1), s + d + r * (d + 1)]`` with ``r =
  prop_boundary_ratio`` (0.5); ``N * K`` points (``K = num_sample_perbin``, 3) are spread evenly
  over it, end points included, and bin ``n`` averages points ``n*K .. n*K + K - 1``.
* A point ``p`` is split with ``math.modf``/``math.ceil``: ``frac, down = modf(p)`` (truncation
  toward zero, so ``-0.3 -> down 0, frac -0.3``), ``up = ceil(p)``; ``1 - frac`` goes to ``down``,
  ``frac`` to ``up``, each only if that index lies in ``[0, T - 1]``. Hence an integer point puts
  its whole weight on itself; a point in (-1, 0) puts weight 1 on index 0 (as ``(1 - frac) +
  frac``); a point <= -1 is dropped; a point in (T - 1, T) keeps only ``1 - frac`` on T - 1;
  a point >= T is dropped. Bins are not renormalised, so edge bins can sum to less than 1, and
  a bin lying wholly at or below -1 (long proposals starting near 0) is all zero.
* Contributions are accumulated in float64 in the official order, multiplied by ``1.0 / K`` and
  cast to float32 -- so the values here are bit-identical to the official mask.
* Cells with ``s + d >= T`` (end index past the last snippet) are all zero. Every other cell has
  at most ``2K`` (= 6) non-zero ``t`` per ``n``.

The layer output is the map ``[B, out, D, T]`` indexed ``[d, s]`` (duration rows, start columns),
exactly as BMN's confidence map; invalid cells hold just the Conv3d bias (before the model's ReLU).

Fusion (``BMLayer``)
--------------------
Sampling and the Conv3d are both linear, so with ``W [out, C, N]`` the Conv3d weight::

    out[b, o, d, s] = bias[o] + sum_{n, t} mask[t, n, d, s] * Y[b, o, n, t],
    Y[b, o, n, t]   = sum_c W[o, c, n] * X[b, c, t]          (one GEMM, [B, T, N*out]: small)

The second line is dense; the first is a sparse product with a [D*T, T*N] matrix of ~4.8e5
non-zeros at T = 100 (instead of a dense [B, C, N, D, T] intermediate, 312 MiB per video at
C = 256). It runs as ``embedding_bag(mode="sum", per_sample_weights=...)`` over the rows of Y --
the fastest sparse-dense product on CPU here and available on CUDA -- inside a custom autograd
Function whose backward is the same product with the transposed matrix (itself differentiable,
so double backward works).
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from bsnpp.labels import valid_map_mask

__all__ = [
    "bm_sampling_mask",
    "bm_sampling_sparse",
    "DenseBMLayer",
    "BMLayer",
]


# --------------------------------------------------------------------------------------------
# The sampling mask
# --------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def _sparse_np(tscale: int, num_sample: int, num_sample_perbin: int,
               prop_boundary_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """index [N, D, S, 2K] int64 and weight [N, D, S, 2K] float32; unused slots have weight 0.

    Vectorised re-expression of the official double loop, doing the same float64 operations in
    the same order so the float32 result is bit-identical.
    """
    T, N, K, r = tscale, num_sample, num_sample_perbin, float(prop_boundary_ratio)
    if T < 1 or N < 1 or K < 1 or N * K < 2:
        raise ValueError(f"need tscale >= 1 and num_sample * num_sample_perbin >= 2, got "
                         f"tscale={T}, num_sample={N}, num_sample_perbin={K}")
    dur = np.arange(T, dtype=np.int64)[:, None]                  # d (rows)
    start = np.arange(T, dtype=np.int64)[None, :]                # s (columns)
    center_len = dur.astype(np.float64) + 1.0                    # float(p_xmax - p_xmin) + 1
    seg_min = start - center_len * r                             # [D, S]
    seg_max = (start + dur) + center_len * r
    plen = seg_max - seg_min
    step = plen / (N * K - 1.0)
    ii = np.arange(N * K, dtype=np.int64)
    samples = seg_min[..., None] + step[..., None] * ii          # [D, S, N*K]

    frac, down = np.modf(samples)                                # truncation toward zero
    up = np.ceil(samples)
    # Contributions in the official order: for each point, (down, 1 - frac) then (up, frac).
    idx = np.stack([down, up], axis=-1).astype(np.int64).reshape(T, T, N, 2 * K)
    wts = np.stack([1 - frac, frac], axis=-1).reshape(T, T, N, 2 * K)
    valid_cell = valid_map_mask(T, T)                            # [D, S]: s + d <= T - 1
    ok = (idx >= 0) & (idx <= T - 1) & valid_cell[:, :, None, None]

    # Left fold per (cell, n, t), exactly as ``bin_vector[t] += w`` starting from 0.0.
    acc = np.zeros_like(wts)
    alive = np.zeros(ok.shape, dtype=bool)
    for j in range(2 * K):
        acc_j = wts[..., j] + 0.0
        for i in range(j):
            same = alive[..., i] & ok[..., j] & (idx[..., i] == idx[..., j])
            acc_j = np.where(same, acc[..., i] + wts[..., j], acc_j)
            alive[..., i] &= ~same
        acc[..., j] = acc_j
        alive[..., j] = ok[..., j]
    weight = (acc * (1.0 / K)).astype(np.float32)                # 1.0 / K * bin_vector
    alive &= weight != 0                                         # (none at the usual settings)
    weight[~alive] = 0.0
    index = np.where(alive, idx, 0)

    # Live entries first, by ascending t; dead slots (index 0, weight 0) last.
    key = np.where(alive, index, T)
    order = np.argsort(key, axis=-1, kind="stable")
    index = np.take_along_axis(index, order, axis=-1)
    weight = np.take_along_axis(weight, order, axis=-1)
    index = np.ascontiguousarray(index.transpose(2, 0, 1, 3))    # [N, D, S, 2K]
    weight = np.ascontiguousarray(weight.transpose(2, 0, 1, 3))
    index.setflags(write=False)
    weight.setflags(write=False)
    return index, weight


def bm_sampling_sparse(tscale: int, num_sample: int = 32, num_sample_perbin: int = 3,
                       prop_boundary_ratio: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Sparse form of :func:`bm_sampling_mask`: for each cell (n, d, s) its non-zeros.

    Returns ``index [N, D, T, 2K]`` (int64, the ``t`` of each entry) and ``weight [N, D, T, 2K]``
    (float32) with ``mask[index[n,d,s,k], n, d, s] == weight[n,d,s,k]``; the live entries come
    first in ascending ``t``, the rest are padding (index 0, weight 0). Cached per arguments.
    """
    index, weight = _sparse_np(int(tscale), int(num_sample), int(num_sample_perbin),
                               float(prop_boundary_ratio))
    return torch.tensor(index), torch.tensor(weight)


def bm_sampling_mask(tscale: int, num_sample: int = 32, num_sample_perbin: int = 3,
                     prop_boundary_ratio: float = 0.5) -> torch.Tensor:
    """BMN's sampling mask, dense ``[T, N, D, T]`` float32, indexed ``mask[t, n, d, s]``.

    Bit-identical to the official ``_get_interp1d_mask`` (see the module docstring for the
    convention); ``mask.view(T, -1)`` is the matrix BMN multiplies the features by.
    """
    index, weight = _sparse_np(int(tscale), int(num_sample), int(num_sample_perbin),
                               float(prop_boundary_ratio))
    T, N = int(tscale), int(num_sample)
    mask = np.zeros((T, N, T, T), dtype=np.float32)
    n, d, s, _ = np.nonzero(weight)
    live = weight != 0
    mask[index[live], n, d, s] = weight[live]      # t is unique per (n, d, s): plain assignment
    return torch.from_numpy(mask)


@functools.lru_cache(maxsize=8)
def _csr_structures(tscale: int, num_sample: int, num_sample_perbin: int,
                    prop_boundary_ratio: float):
    """Row-compressed forms of the [D*T, T*N] matrix A (rows d*T + s, columns t*N + n) and A^T.

    Returns ``(col, offsets, values)`` for A and for A^T (offsets = start of each row, one per
    row, as ``embedding_bag`` takes them), as CPU tensors.
    """
    index, weight = _sparse_np(tscale, num_sample, num_sample_perbin, prop_boundary_ratio)
    T, N = tscale, num_sample
    live = weight != 0                                           # [N, D, S, 2K]
    n = np.broadcast_to(np.arange(N)[:, None, None, None], weight.shape)
    # Order the entries by row (d, s) first: move n next to k.
    live_r = live.transpose(1, 2, 0, 3)
    rows = np.broadcast_to((np.arange(T)[:, None] * T + np.arange(T)[None, :])[:, :, None, None],
                           live_r.shape)[live_r]
    cols = (index.transpose(1, 2, 0, 3) * N + n.transpose(1, 2, 0, 3))[live_r]
    vals = weight.transpose(1, 2, 0, 3)[live_r]
    n_rows, n_cols = T * T, T * N

    def compress(r, c, v, n_r):
        order = np.lexsort((c, r))
        r, c, v = r[order], c[order], v[order]
        counts = np.bincount(r, minlength=n_r)
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        return (torch.from_numpy(c.astype(np.int64)), torch.from_numpy(offsets.astype(np.int64)),
                torch.from_numpy(v.astype(np.float32)))

    fwd = compress(rows, cols, vals, n_rows)
    bwd = compress(cols, rows, vals, n_cols)
    return fwd, bwd


# --------------------------------------------------------------------------------------------
# Sparse product with autograd
# --------------------------------------------------------------------------------------------

class _SparseRows(torch.autograd.Function):
    """out[b, i, :] = sum_j A[i, j] * table[b, j, :] for a fixed sparse A given row-compressed.

    A is (col, offsets, values) with one offset per row (I rows); A^T likewise, for the backward,
    which is this same Function with A and A^T and the two layouts swapped (so it is itself
    differentiable). ``in_cols``/``out_cols`` say whether table / out are laid out [B, J, O] /
    [B, I, O] (False) or [B, O, J] / [B, O, I] (True): the product itself works on rows, and a
    per-sample 2-D transposed copy is the cheapest way to meet a channels-first layout.
    """

    @staticmethod
    def forward(ctx, table, col, offsets, values, t_col, t_offsets, t_values, n_rows,
                in_cols, out_cols):
        ctx.save_for_backward(col, offsets, values, t_col, t_offsets, t_values)
        ctx.layout = (in_cols, out_cols)
        ctx.n_in = table.shape[2] if in_cols else table.shape[1]
        B = table.shape[0]
        Co = table.shape[1] if in_cols else table.shape[2]
        out = table.new_empty((B, Co, n_rows) if out_cols else (B, n_rows, Co))
        values = values.to(table.dtype)
        with torch.autocast(device_type=table.device.type, enabled=False):
            for b in range(B):      # per sample: no B-times replicated index arrays
                rows = table[b].t().contiguous() if in_cols else table[b]
                res = F.embedding_bag(col, rows, offsets, mode="sum", per_sample_weights=values)
                if out_cols:
                    out[b].copy_(res.t())
                else:
                    out[b] = res
        return out

    @staticmethod
    def backward(ctx, grad_out):
        col, offsets, values, t_col, t_offsets, t_values = ctx.saved_tensors
        in_cols, out_cols = ctx.layout
        grad_table = None
        if ctx.needs_input_grad[0]:
            grad_table = _SparseRows.apply(grad_out.contiguous(), t_col, t_offsets, t_values,
                                           col, offsets, values, ctx.n_in, out_cols, in_cols)
        return grad_table, None, None, None, None, None, None, None, None, None


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------

class _BMBase(nn.Module):
    def __init__(self, in_channels: int = 256, out_channels: int = 512, tscale: int = 100,
                 num_sample: int = 32, num_sample_perbin: int = 3,
                 prop_boundary_ratio: float = 0.5):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.tscale = tscale
        self.num_sample = num_sample
        self.num_sample_perbin = num_sample_perbin
        self.prop_boundary_ratio = float(prop_boundary_ratio)
        # BMN's x_3d_p convolution (bias on, PyTorch default init); the model applies ReLU after.
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel_size=(num_sample, 1, 1),
                                stride=(num_sample, 1, 1))

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[1] != self.in_channels or x.shape[2] != self.tscale:
            raise ValueError(f"expected features [B, {self.in_channels}, {self.tscale}], "
                             f"got {list(x.shape)}")

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"tscale={self.tscale}, num_sample={self.num_sample}, "
                f"num_sample_perbin={self.num_sample_perbin}, "
                f"prop_boundary_ratio={self.prop_boundary_ratio}")


class DenseBMLayer(_BMBase):
    """BMN's BM layer followed by its Conv3d, done the official way (the reference).

    BMN Section 3.2 ("BM layer"): ``features [B, C, T] @ mask [T, N*D*T]`` -> BM feature map
    ``[B, C, N, D, T]`` -> ``Conv3d(C -> out, kernel (N, 1, 1), stride (N, 1, 1))`` -> squeeze
    -> ``[B, out, D, T]``, indexed [duration, start]. No ReLU inside (BMN's ``x_3d_p`` applies
    it after the Conv3d; the model does). The intermediate is B*C*N*T*T floats (312 MiB per video
    at C = 256, T = 100) and the mask 122 MiB: use :class:`BMLayer` except to check it.
    The mask is a non-persistent buffer, so the state_dict is only ``conv3d.weight/bias``.
    """

    def __init__(self, in_channels: int = 256, out_channels: int = 512, tscale: int = 100,
                 num_sample: int = 32, num_sample_perbin: int = 3,
                 prop_boundary_ratio: float = 0.5):
        super().__init__(in_channels, out_channels, tscale, num_sample, num_sample_perbin,
                         prop_boundary_ratio)
        mask = bm_sampling_mask(tscale, num_sample, num_sample_perbin, prop_boundary_ratio)
        self.register_buffer("sample_mask", mask.view(tscale, -1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        B, C, T = x.shape
        bm_feature = torch.matmul(x, self.sample_mask.to(x.dtype)).view(
            B, C, self.num_sample, T, T)
        return self.conv3d(bm_feature).squeeze(2)


class BMLayer(_BMBase):
    """BMN's BM layer + Conv3d fused: exact, without the [B, C, N, D, T] intermediate.

    Same constructor, parameters and state_dict keys (``conv3d.weight [out, C, N, 1, 1]``,
    ``conv3d.bias [out]``) as :class:`DenseBMLayer`, so weights interchange; same output
    ``[B, out, D, T]`` indexed [duration, start], no ReLU inside. Computes (module docstring)
    ``Y = X^T W`` as one GEMM ([B, T, N*out]), then ``out = A Y + bias`` with the sparse
    sampling matrix A [D*T, T*N]. Peak extra memory is Y plus the output, instead of the
    intermediate and its gradient.

    Buffers (non-persistent, built once per configuration and shared through a cache): the
    row-compressed A and A^T used by the product (``a_*``, ``at_*``; :func:`bm_sampling_sparse`
    gives the same non-zeros per cell, for inspection).

    Precision: the GEMM follows the ambient dtype/autocast; the sparse product and the output are
    float32 for float16/bfloat16 inputs (so under autocast the output is float32, where the dense
    Conv3d would give half precision), float64 for float64.

    ``channels_last=True`` returns the output in channels-last memory format (a permuted view,
    which is how the product lays it out), skipping one copy of the output each way; values and
    shape are the same.
    """

    def __init__(self, in_channels: int = 256, out_channels: int = 512, tscale: int = 100,
                 num_sample: int = 32, num_sample_perbin: int = 3,
                 prop_boundary_ratio: float = 0.5, channels_last: bool = False):
        super().__init__(in_channels, out_channels, tscale, num_sample, num_sample_perbin,
                         prop_boundary_ratio)
        self.channels_last = channels_last
        key = (int(tscale), int(num_sample), int(num_sample_perbin), float(prop_boundary_ratio))
        (col, off, val), (t_col, t_off, t_val) = _csr_structures(*key)
        self.register_buffer("a_col", col, persistent=False)
        self.register_buffer("a_offsets", off, persistent=False)
        self.register_buffer("a_values", val, persistent=False)
        self.register_buffer("at_col", t_col, persistent=False)
        self.register_buffer("at_offsets", t_off, persistent=False)
        self.register_buffer("at_values", t_val, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        B, C, T = x.shape
        N, Co = self.num_sample, self.out_channels
        # W[o, c, n] -> [C, N*Co]; Y[b, t, n*Co + o] = sum_c X[b, c, t] W[o, c, n].
        w = self.conv3d.weight.view(Co, C, N).permute(1, 2, 0).reshape(C, N * Co)
        y = torch.matmul(x.transpose(1, 2), w)
        dtype = torch.float64 if y.dtype == torch.float64 else torch.float32
        table = y.to(dtype).reshape(B, T * N, Co)
        bias = self.conv3d.bias.to(dtype)
        if self.channels_last:      # [B, D*T, Co] is channels-last [B, Co, D, T] memory
            out = _SparseRows.apply(table, self.a_col, self.a_offsets, self.a_values,
                                    self.at_col, self.at_offsets, self.at_values, T * T,
                                    False, False)
            return out.add_(bias).view(B, T, T, Co).permute(0, 3, 1, 2)
        out = _SparseRows.apply(table, self.a_col, self.a_offsets, self.a_values,
                                self.at_col, self.at_offsets, self.at_values, T * T,
                                False, True)                        # [B, Co, D*T]
        return out.add_(bias[:, None]).view(B, Co, T, T)
