"""BSN++ (Su et al., AAAI 2021, arXiv 2009.07641), modules named after the paper's Figure 2.

    features [B, C, T]
      └─ BaseModule (BMN's x_1d_b)                         -> [B, 256, T]
           ├─ ComplementaryBoundaryGenerator (CBG)         -> start, end [B, T]
           │     nested 1-D U-Net, run forward and on the time-reversed sequence
           │     (bi-directional boundary matching, Sec. 3.2)
           └─ proposal branch: Conv1d -> BM layer -> ReLU -> 2-D convs  -> map features [B, 128, D, T]
                └─ ProposalRelationBlock (PRB, Sec. 3.3)
                     plain head, position-aware attention head, channel-aware attention head
                     each -> (reg, cls) maps [B, D, T]; inference averages the heads

Map convention (used by labels, losses and post-processing alike): a [D = T, T] map whose cell
[d, s] is the proposal [s/T, (s+d+1)/T] in normalised time; cells with s + d + 1 > T are invalid.
The BM layer samples cell [d, s] exactly as BMN does (region [s, s + d] in snippet positions,
extended by half of d + 1 on each side).

The pieces are switchable for the paper's ablations: `cbg="unet"|"tem"` (BMN's plain temporal
evaluation module instead of the CBG), `bidirectional`, `prb="none"|"position"|"channel"|"both"`,
and `bm_impl="fused"|"dense"` (our fused BM layer or BMN's dense-mask matmul; same weights).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from bsnpp.bm_layer import BMLayer, DenseBMLayer
from bsnpp.labels import valid_map_mask

__all__ = ["BaseModule", "ComplementaryBoundaryGenerator", "TemporalEvaluationModule",
           "PositionAttention", "ChannelAttention", "ProposalRelationBlock", "BSNPP", "reverse_boundary"]


def reverse_boundary(p: torch.Tensor) -> torch.Tensor:
    """Boundary probabilities of the time-reversed pass, back in forward time: a plain flip.

    The boundary targets (bsnpp.data, BMN's anchors [(k - 0.5)/T, (k + 1.5)/T]) are centred on the
    bin centres (k + 0.5)/T, so reversing time maps bin k to bin T - 1 - k and the start targets
    of the reversed video are exactly the flipped end targets (tested in test_data).
    """
    return p.flip(-1)


class BaseModule(nn.Module):
    """BMN's base module: two grouped Conv1d(k=3) + ReLU over the snippet features."""

    def __init__(self, in_channels: int, hidden: int = 256, groups: int = 4):
        super().__init__()
        g = groups if in_channels % groups == 0 and hidden % groups == 0 else 1
        self.net = nn.Sequential(
            nn.Conv1d(in_channels, hidden, 3, padding=1, groups=g), nn.ReLU(inplace=True),
            nn.Conv1d(hidden, hidden, 3, padding=1, groups=g), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.net(x)


def _unit(cin: int, cout: int) -> nn.Sequential:
    """Conv1d(k=3) + BN + ReLU, the CBG's building unit."""
    return nn.Sequential(nn.Conv1d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm1d(cout),
                         nn.ReLU(inplace=True))


class ComplementaryBoundaryGenerator(nn.Module):
    """CBG (Sec. 3.2): a 1-D U-shaped encoder-decoder with nested skip connections (UNet++, depth 3).

    x0_0 = u(x); x1_0 = u(pool(x0_0)); x2_0 = u(pool(x1_0));
    x0_1 = u([x0_0, up(x1_0)]); x1_1 = u([x1_0, up(x2_0)]); x0_2 = u([x0_0, x0_1, up(x1_1)]).
    The start/end probabilities come from a 1x1 conv + sigmoid on x0_2. Returns (start, end,
    x0_2): the last is the feature the bi-directional consistency term compares.
    """

    def __init__(self, channels: int = 256, width: int = 128):
        super().__init__()
        w = width
        self.x0_0, self.x1_0, self.x2_0 = _unit(channels, w), _unit(w, 2 * w), _unit(2 * w, 4 * w)
        self.x0_1 = _unit(w + 2 * w, w)
        self.x1_1 = _unit(2 * w + 4 * w, 2 * w)
        self.x0_2 = _unit(w + w + 2 * w, w)
        self.head = nn.Conv1d(w, 2, 1)

    @staticmethod
    def _up(x, size):
        return F.interpolate(x, size=size, mode="linear", align_corners=False)

    def forward(self, x):
        t0 = x.shape[-1]
        x00 = self.x0_0(x)
        x10 = self.x1_0(F.max_pool1d(x00, 2, ceil_mode=True))
        x20 = self.x2_0(F.max_pool1d(x10, 2, ceil_mode=True))
        x01 = self.x0_1(torch.cat([x00, self._up(x10, t0)], 1))
        x11 = self.x1_1(torch.cat([x10, self._up(x20, x10.shape[-1])], 1))
        x02 = self.x0_2(torch.cat([x00, x01, self._up(x11, t0)], 1))
        p = torch.sigmoid(self.head(x02))
        return p[:, 0], p[:, 1], x02


class TemporalEvaluationModule(nn.Module):
    """BMN's TEM (the ablation without the CBG): two grouped conv branches for start and end."""

    def __init__(self, channels: int = 256, groups: int = 4):
        super().__init__()

        def branch():
            return nn.Sequential(nn.Conv1d(channels, channels, 3, padding=1, groups=groups),
                                 nn.ReLU(inplace=True), nn.Conv1d(channels, 1, 1), nn.Sigmoid())

        self.start, self.end = branch(), branch()

    def forward(self, x):
        return self.start(x).squeeze(1), self.end(x).squeeze(1), x


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T) v with scale 1 (DANet): [B, M, c'], [B, Nk, c'], [B, Nk, C] -> [B, M, C]."""
    return F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), scale=1.0).squeeze(1)


class PositionAttention(nn.Module):
    """Position-aware self-attention over the proposal map (DANet's PAM, as the PRB's first
    branch): every cell attends to every valid cell; out = gamma * attn(x) + x, gamma = 0 at
    start. Invalid cells are no keys (they are left out, which is exactly masking them).

    Memory: the scores of all N = D*T queries against the Nv = T(T+1)/2 valid keys are B*N*Nv
    floats (16 GiB in fp32 at THUMOS's T = 128, batch 16, and as much again for their gradient),
    which a backend without a memory-efficient attention kernel for this shape (CPU; CUDA with
    mismatched q/v widths) would materialise. The queries are therefore processed in chunks of at
    most ``max_chunk_bytes`` of scores, each chunk under activation checkpointing when gradients
    are needed (its scores are recomputed in the backward pass instead of kept): the peak is one
    chunk's scores, whatever T and the batch. Each query row is the same computation as without
    chunks (tested equal within 1e-5, forward and gradients).
    """

    def __init__(self, channels: int, reduction: int = 8, max_chunk_bytes: int = 256 << 20):
        super().__init__()
        self.q = nn.Conv2d(channels, channels // reduction, 1)
        self.k = nn.Conv2d(channels, channels // reduction, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.max_chunk_bytes = int(max_chunk_bytes)

    def forward(self, x, mask):
        b, c, d, t = x.shape
        keys = mask.flatten().nonzero().squeeze(1)               # the valid cells
        q = self.q(x).flatten(2).transpose(1, 2)                 # [B, N, c']
        k = self.k(x).flatten(2)[:, :, keys].transpose(1, 2)     # [B, Nv, c']
        v = self.v(x).flatten(2)[:, :, keys].transpose(1, 2)     # [B, Nv, C]
        n = q.shape[1]
        chunk = max(1, self.max_chunk_bytes // max(1, b * k.shape[1] * q.element_size()))
        if chunk >= n:
            out = _attend(q, k, v)
        else:
            grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
            parts = []
            for lo in range(0, n, chunk):
                qc = q[:, lo:lo + chunk]
                parts.append(checkpoint(_attend, qc, k, v, use_reentrant=False) if grad else _attend(qc, k, v))
            out = torch.cat(parts, 1)
        out = out.transpose(1, 2).reshape(b, c, d, t)
        return self.gamma * out + x


class ChannelAttention(nn.Module):
    """Channel-aware self-attention (DANet's CAM, the PRB's second branch): channel affinities
    from the valid cells, softmax over (max - energy); out = beta * attn(x) + x, beta = 0 at start."""

    def __init__(self):
        super().__init__()
        self.beta = nn.Parameter(torch.zeros(1))

    def forward(self, x, mask):
        b, c, d, t = x.shape
        flat = (x * mask).flatten(2)  # [B, C, N]
        energy = flat @ flat.transpose(1, 2)  # [B, C, C]
        energy = energy.amax(-1, keepdim=True).expand_as(energy) - energy
        attn = energy.softmax(-1)
        out = (attn @ x.flatten(2)).view(b, c, d, t)
        return self.beta * out + x


def _map_head(channels: int) -> nn.Sequential:
    """(reg, cls) maps: BMN's last Conv2d(128 -> 2, 1) + sigmoid, after one 3x3 refinement."""
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(channels, 2, 1), nn.Sigmoid())


class ProposalRelationBlock(nn.Module):
    """PRB (Sec. 3.3): proposal-proposal relations by position- and channel-aware attention.

    Returns one (reg, cls) pair per head: the plain head on the map features, and one head after
    each enabled attention branch. Training supervises every head; inference averages them.
    """

    def __init__(self, channels: int = 128, mode: str = "both"):
        super().__init__()
        if mode not in ("none", "position", "channel", "both"):
            raise ValueError(f"prb must be none|position|channel|both, got {mode!r}")
        self.mode = mode
        self.plain = _map_head(channels)
        self.pos = PositionAttention(channels) if mode in ("position", "both") else None
        self.pos_head = _map_head(channels) if self.pos is not None else None
        self.chan = ChannelAttention() if mode in ("channel", "both") else None
        self.chan_head = _map_head(channels) if self.chan is not None else None

    def forward(self, x, mask):
        m = mask.to(x.dtype)
        heads = [self.plain(x)]
        if self.pos is not None:
            heads.append(self.pos_head(self.pos(x, mask)))
        if self.chan is not None:
            heads.append(self.chan_head(self.chan(x, m)))
        return [h * m for h in heads]  # invalid cells are exactly 0


class BSNPP(nn.Module):
    """The whole BSN++ network (and BMN as the ablation cbg="tem", bidirectional=False, prb="none").

    forward(x [B, C, T]) returns a dict:
      start, end [B, T]              forward-direction boundary probabilities
      start_bwd, end_bwd [B, T]      backward-direction outputs flipped back to forward time
                                     (start_bwd predicts ends, end_bwd predicts starts)
      feat, feat_bwd [B, W, T]       CBG features (forward; backward flipped back)
      reg, cls [B, H, D, T]          the H heads' maps
    `fuse(out)` gives the inference scores (start, end, reg, cls) with the heads averaged and the
    bi-directional sqrt fusion.
    """

    def __init__(self, in_channels: int = 400, tscale: int = 100, num_sample: int = 32, num_sample_perbin: int = 3, prop_boundary_ratio: float = 0.5,
                 hidden_1d: int = 256, hidden_2d: int = 128, hidden_3d: int = 512,
                 cbg: str = "unet", cbg_width: int = 128, bidirectional: bool = True,
                 prb: str = "both", bm_impl: str = "fused"):
        super().__init__()
        self.tscale = tscale
        self.bidirectional = bidirectional
        self.base = BaseModule(in_channels, hidden_1d)
        if cbg == "unet":
            self.cbg = ComplementaryBoundaryGenerator(hidden_1d, cbg_width)
        elif cbg == "tem":
            self.cbg = TemporalEvaluationModule(hidden_1d)
        else:
            raise ValueError(f"cbg must be unet|tem, got {cbg!r}")
        self.proposal_1d = nn.Sequential(nn.Conv1d(hidden_1d, hidden_1d, 3, padding=1), nn.ReLU(inplace=True))
        if bm_impl not in ("fused", "dense"):
            raise ValueError(f"bm_impl must be fused|dense, got {bm_impl!r}")
        self.bm = (BMLayer if bm_impl == "fused" else DenseBMLayer)(hidden_1d, hidden_3d, tscale=tscale, num_sample=num_sample, num_sample_perbin=num_sample_perbin,
                          prop_boundary_ratio=prop_boundary_ratio)
        self.proposal_2d = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden_3d, hidden_2d, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden_2d, hidden_2d, 3, padding=1), nn.ReLU(inplace=True))
        self.prb = ProposalRelationBlock(hidden_2d, prb)
        self.register_buffer("mask", torch.tensor(valid_map_mask(tscale, tscale)), persistent=False)

    def forward(self, x):
        if x.shape[-1] != self.tscale:
            raise ValueError(f"expected features [B, C, {self.tscale}], got {list(x.shape)}")
        base = self.base(x)
        start, end, feat = self.cbg(base)
        out = {"start": start, "end": end, "feat": feat}
        if self.bidirectional:
            s_b, e_b, f_b = self.cbg(base.flip(-1))
            out.update(start_bwd=reverse_boundary(s_b), end_bwd=reverse_boundary(e_b),
                       feat_bwd=f_b.flip(-1))
        maps = self.proposal_2d(self.bm(self.proposal_1d(base)))
        heads = self.prb(maps, self.mask)
        out["reg"] = torch.stack([h[:, 0] for h in heads], 1)
        out["cls"] = torch.stack([h[:, 1] for h in heads], 1)
        return out

    @staticmethod
    def fuse(out: dict) -> dict:
        """Inference scores: heads averaged (PRB); start = sqrt(start_fwd * end_bwd-flipped) and
        end = sqrt(end_fwd * start_bwd-flipped) (bi-directional boundary matching)."""
        start, end = out["start"], out["end"]
        if "start_bwd" in out:
            start = torch.sqrt(start * out["end_bwd"])
            end = torch.sqrt(end * out["start_bwd"])
        return {"start": start, "end": end, "reg": out["reg"].mean(1), "cls": out["cls"].mean(1)}
