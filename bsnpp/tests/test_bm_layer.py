"""BM layer: the mask against a literal loop in the official code's terms; fused == dense."""
import math

import numpy as np
import pytest
import torch

from bsnpp.bm_layer import BMLayer, DenseBMLayer, bm_sampling_mask, bm_sampling_sparse
from bsnpp.labels import valid_map_mask


def literal_loop_mask(tscale, num_sample=32, num_sample_perbin=3, ratio=0.5):
    """BMN's _get_interp1d_mask / _get_interp1d_bin_mask as plain loops (start outer,
    duration inner, math.modf / math.ceil per point, float64 accumulation, float32 at the end)."""
    T, N, K = tscale, num_sample, num_sample_perbin
    per_start = []
    for start in range(T):
        per_duration = []
        for dur in range(T):
            if start + dur < T:
                p_min, p_max = start, start + dur
                center_len = float(p_max - p_min) + 1
                lo = p_min - center_len * ratio
                hi = p_max + center_len * ratio
                step = float(hi - lo) / (N * K - 1.0)
                points = [lo + step * i for i in range(N * K)]
                cols = []
                for n in range(N):
                    vec = np.zeros([T])
                    for p in points[n * K:(n + 1) * K]:
                        upper = math.ceil(p)
                        dec, down = math.modf(p)
                        if 0 <= int(down) <= T - 1:
                            vec[int(down)] += 1 - dec
                        if 0 <= int(upper) <= T - 1:
                            vec[int(upper)] += dec
                    cols.append(1.0 / K * vec)
                cell = np.stack(cols, axis=1)               # [T, N]
            else:
                cell = np.zeros([T, N])
            per_duration.append(cell)
        per_start.append(np.stack(per_duration, axis=2))    # [T, N, D]
    return np.stack(per_start, axis=3).astype(np.float32)   # [T, N, D, S]


@pytest.mark.parametrize("args", [(16, 32, 3, 0.5), (100, 32, 3, 0.5), (21, 8, 2, 0.25),
                                  (1, 32, 3, 0.5), (9, 5, 4, 0.7)])
def test_mask_equals_literal_loop_bitwise(args):
    mask = bm_sampling_mask(*args)
    ref = literal_loop_mask(*args)
    assert mask.dtype == torch.float32 and tuple(mask.shape) == ref.shape
    assert np.array_equal(mask.numpy(), ref)


def test_mask_hand_worked_cells():
    # T=4, N=2, K=2, r=0.5: four points per cell, two per bin.
    m = bm_sampling_mask(4, 2, 2, 0.5)
    # (d=1, s=1): segment [0, 3], points 0, 1, 2, 3 -> integer points weigh on themselves.
    np.testing.assert_allclose(m[:, 0, 1, 1], [0.5, 0.5, 0, 0])
    np.testing.assert_allclose(m[:, 1, 1, 1], [0, 0, 0.5, 0.5])
    # (d=0, s=0): segment [-0.5, 0.5], points -1/2, -1/6, 1/6, 1/2. modf truncates toward zero,
    # so the negative points land wholly on t=0: bin 0 -> t0 = 1; bin 1 -> t0 2/3, t1 1/3.
    np.testing.assert_allclose(m[:, 0, 0, 0], [1, 0, 0, 0], atol=1e-7)
    np.testing.assert_allclose(m[:, 1, 0, 0], [2 / 3, 1 / 3, 0, 0], atol=1e-7)
    # (d=0, s=3): segment [2.5, 3.5]; the parts falling on t=4 are dropped (bin 1 sums to 2/3).
    np.testing.assert_allclose(m[:, 0, 0, 3], [0, 0, 1 / 3, 2 / 3], atol=1e-7)
    np.testing.assert_allclose(m[:, 1, 0, 3], [0, 0, 0, 2 / 3], atol=1e-7)


@pytest.mark.parametrize("T", [16, 100])
def test_invalid_cells_are_zero_and_valid_cells_are_not(T):
    mask = bm_sampling_mask(T)
    any_cell = (mask != 0).any(dim=0).any(dim=0)             # [D, S]
    valid = torch.tensor(valid_map_mask(T, T))
    assert torch.equal(any_cell, valid)
    # A valid cell can still have empty bins: those lying wholly at or below -1 (long proposals
    # near the start; e.g. s=0, d=T-1 extends to -T/2), as in the official code.
    empty_bin = ~(mask != 0).any(dim=0)                      # [N, D, S]
    assert bool(empty_bin[:, T - 1, 0].any()) and not bool(empty_bin[:, 0, :].any())
    d, s = torch.meshgrid(torch.arange(T), torch.arange(T), indexing="ij")
    assert torch.equal(valid, s + d <= T - 1)


@pytest.mark.parametrize("T", [16, 100])
def test_sparse_description_matches_dense(T):
    index, weight = bm_sampling_sparse(T)
    mask = bm_sampling_mask(T)
    N, K2 = 32, 6
    assert tuple(index.shape) == (N, T, T, K2) and tuple(weight.shape) == (N, T, T, K2)
    rebuilt = torch.zeros_like(mask)
    n, d, s, _ = torch.nonzero(weight, as_tuple=True)
    rebuilt[index[weight != 0], n, d, s] = weight[weight != 0]
    assert torch.equal(rebuilt, mask)
    # no duplicate t among live entries of a cell; live entries first, ascending t
    live = weight != 0
    count = live.sum(-1)
    assert torch.equal(live, torch.arange(K2) < count[..., None])
    t_live = torch.where(live, index, torch.full_like(index, T))
    assert bool((t_live.diff(dim=-1)[..., :] >= 0).all())
    assert bool(((t_live.diff(dim=-1) > 0) | ~live[..., 1:]).all())
    assert int(count.max()) <= K2


def _pair(C, Co, T, dtype=torch.float32, seed=0, **kw):
    torch.manual_seed(seed)
    dense = DenseBMLayer(C, Co, T, **kw).to(dtype)
    fused = BMLayer(C, Co, T, **kw).to(dtype)
    fused.load_state_dict(dense.state_dict())
    return dense, fused


def _fwd_bwd(layer, x, g):
    layer.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    out = layer(x)
    out.backward(g)
    return out.detach(), x.grad, layer.conv3d.weight.grad, layer.conv3d.bias.grad


def _assert_close_scaled(got, ref, tol, name):
    """max |got - ref| <= tol * max(1, max |ref|): the weight and bias gradients sum ~1e4 cells
    (values ~1e2), where float32 summation alone differs by ~1e-4 absolute."""
    assert got.shape == ref.shape, name
    err = (got - ref).abs().max().item()
    scale = max(1.0, ref.abs().max().item())
    assert err <= tol * scale, f"{name}: max abs diff {err:.3g} > {tol:g} * {scale:.3g}"


@pytest.mark.parametrize("T,B", [(16, 1), (33, 2), (100, 3)])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_fused_equals_dense_forward_and_gradients(T, B, dtype, tol):
    C, Co = 8, 6
    dense, fused = _pair(C, Co, T, dtype)
    torch.manual_seed(1)
    x = torch.randn(B, C, T, dtype=dtype)
    g = torch.randn(B, Co, T, T, dtype=dtype)
    ref = _fwd_bwd(dense, x, g)
    got = _fwd_bwd(fused, x, g)
    assert got[0].shape == (B, Co, T, T) and got[0].dtype == dtype and got[0].is_contiguous()
    for name, a, b in zip(["out", "grad_x", "grad_w", "grad_b"], ref, got):
        _assert_close_scaled(b, a, tol, name)


def test_invalid_cells_hold_bias_only():
    T, C, Co = 16, 4, 5
    dense, fused = _pair(C, Co, T)
    x = torch.randn(2, C, T)
    invalid = ~torch.tensor(valid_map_mask(T, T))
    for layer in (dense, fused):
        out = layer(x).detach()
        expect = layer.conv3d.bias.detach()[None, :, None].expand(2, Co, int(invalid.sum()))
        assert torch.equal(out[:, :, invalid], expect)


def test_batch_of_one_equals_rows_of_batch():
    T, C, Co = 33, 8, 6
    _, fused = _pair(C, Co, T)
    x = torch.randn(4, C, T)
    full = fused(x)
    for i in range(4):
        torch.testing.assert_close(fused(x[i:i + 1])[0], full[i], rtol=1e-6, atol=1e-6)


def test_state_dict_interchange():
    dense, fused = _pair(8, 6, 16, seed=3)
    assert list(dense.state_dict()) == list(fused.state_dict()) == ["conv3d.weight",
                                                                    "conv3d.bias"]
    assert tuple(fused.state_dict()["conv3d.weight"].shape) == (6, 8, 32, 1, 1)
    # and back: a fused layer's weights load into a fresh dense one
    torch.manual_seed(7)
    other = BMLayer(8, 6, 16)
    dense.load_state_dict(other.state_dict())
    x = torch.randn(2, 8, 16)
    torch.testing.assert_close(other(x), dense(x), rtol=1e-5, atol=1e-5)


def test_gradcheck_and_double_backward():
    torch.manual_seed(0)
    T, C, Co, N = 6, 2, 3, 4
    layer = BMLayer(C, Co, T, num_sample=N, num_sample_perbin=3).double()
    x = torch.randn(2, C, T, dtype=torch.float64, requires_grad=True)
    w = layer.conv3d.weight.detach().clone().requires_grad_(True)
    b = layer.conv3d.bias.detach().clone().requires_grad_(True)

    def f(x, w, b):
        return torch.func.functional_call(layer, {"conv3d.weight": w, "conv3d.bias": b}, (x,))

    assert torch.autograd.gradcheck(f, (x, w, b))
    assert torch.autograd.gradgradcheck(f, (x, w, b))


def test_channels_last_option_and_autocast():
    T, C, Co = 33, 8, 6
    _, fused = _pair(C, Co, T)
    x = torch.randn(2, C, T)
    ref = fused(x)
    fused.channels_last = True
    out = fused(x)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, ref)
    fused.channels_last = False
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = fused(x)
    assert low.dtype == torch.float32
    assert (low - ref).norm() / ref.norm() < 2e-2


def test_buffers_follow_dtype_and_are_not_saved():
    fused = BMLayer(4, 3, 10).double()
    assert fused.a_values.dtype == torch.float64 and fused.a_col.dtype == torch.int64
    assert "a_values" not in fused.state_dict() and "sample_index" not in fused.state_dict()
    with pytest.raises(ValueError, match=r"\[B, 4, 10\]"):
        fused(torch.randn(1, 4, 11, dtype=torch.float64))
