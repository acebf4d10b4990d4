"""The Markov process over channel groups (DMCP, Sec. 3.2, Eq. 1-4 and Fig. 2b).

A prunable layer with C output channels is split into a minimum set of `min_ch` channels that is
always kept plus `n_groups` equal groups of `group` channels. State k means "group k is kept";
keeping group k requires keeping group k-1 (the channels are ordered), so a layer in state k keeps
its first `min_ch + k * group` channels. Each transition has one learnable parameter:

    p_k = P(keep group k | group k-1 kept) = sigmoid(alpha_k)            (transition, Eq. 2)
    P(group k kept) = prod_{i <= k} p_i                                   (marginal, Eq. 3)
    E[C] = min_ch + group * sum_k P(group k kept)                         (expected width, Eq. 4)

The gate of the architecture pass scales every channel by the marginal probability of its group
(the first `min_ch` channels by 1). Alphas start at 0 (p = 0.5), as in the official code.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["GroupSpec", "group_spec", "MarkovGate", "sample_chain"]


@dataclass(frozen=True)
class GroupSpec:
    """How one layer's C channels are divided: `min_ch + group * n_groups == channels`."""

    channels: int
    min_ch: int
    group: int
    n_groups: int

    def channels_at(self, k: int) -> int:
        """Channels kept in state k (k groups kept beyond the minimum)."""
        if not 0 <= k <= self.n_groups:
            raise ValueError(f"state {k} outside 0..{self.n_groups}")
        return self.min_ch + k * self.group

    def state_of(self, channels: int) -> int:
        """The state whose width is `channels` (which must lie on the grid)."""
        if self.group == 0:
            if channels != self.channels:
                raise ValueError(f"{channels} channels: this layer is not prunable ({self.channels})")
            return 0
        k, r = divmod(channels - self.min_ch, self.group)
        if r or not 0 <= k <= self.n_groups:
            raise ValueError(f"{channels} channels is not on the grid {self.states()}")
        return k

    def states(self) -> list[int]:
        return [self.min_ch + k * self.group for k in range(self.n_groups + 1)]


def group_spec(channels: int, min_width: float = 0.1, max_width: float = 1.0, step: float = 0.1,
               multiple: int = 1) -> GroupSpec:
    """Group arithmetic of the official AlphaLayer, or its hardware-friendly variant.

    Official (`multiple=1`): group = int(step * C / max_width), n = int((max - min) / step),
    min_ch = C - group * n. 64 channels -> min 10, group 6; 2048 -> min 212, group 204. A layer
    too narrow for one channel per group (group = 0) is not pruned.

    Hardware-friendly (`multiple=m`, e.g. 8): the group size is step * C / max rounded down or up
    to a multiple of m (at least m), n is reduced until the minimum set still holds min_width /
    max_width of the channels, and of the two roundings the one reaching the narrower minimum is
    kept; when C is a multiple of m every state is one too (64 -> 8, 16, ..., 64; 128 -> 16, 32,
    ..., 128; 2048 -> 248 + k * 200).
    """
    if channels < 1:
        raise ValueError(f"channels must be positive, got {channels}")
    if not 0 < min_width < max_width or step <= 0:
        raise ValueError(f"need 0 < min_width ({min_width}) < max_width ({max_width}) and step ({step}) > 0")
    n = int((max_width - min_width) / step + 1e-4)
    if multiple <= 1:
        group = int(step * channels / max_width)
        if group == 0 or n == 0:
            return GroupSpec(channels, channels, 0, 0)
        return GroupSpec(channels, channels - group * n, group, n)
    # the group size: step * C / max_width rounded down or up to a multiple of m, whichever lets
    # the states reach lower (the minimum set closest to min_width / max_width of the channels)
    min_target = min_width * channels / max_width
    best = None
    raw = step * channels / max_width / multiple
    for group in sorted({multiple * max(1, math.floor(raw)), multiple * max(1, math.ceil(raw))}):
        k = min(n, int(math.floor((channels - min_target) / group + 1e-9)))
        if k <= 0:
            continue
        cand = GroupSpec(channels, channels - group * k, group, k)
        if best is None or cand.min_ch < best.min_ch:
            best = cand
    return best if best is not None else GroupSpec(channels, channels, 0, 0)


def sample_chain(probs: torch.Tensor, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Direct sampling of the chain: `n_samples` states (int64), each the number of consecutive
    successful transitions with probabilities `probs` (Sec. 3.4, "direct sampling")."""
    u = torch.rand(n_samples, probs.numel(), generator=generator, dtype=torch.float64)
    keep = (u < probs.detach().double().cpu()[None]).to(torch.int64)
    return keep.cumprod(dim=1).sum(dim=1)


class MarkovGate(nn.Module):
    """One Markov chain (one group of layers whose outputs are tied, e.g. a residual stage).

    Holds the architecture parameters alpha [n_groups] and the width state the slimmable layers
    read: `active` (channels used by the weight passes; None = all) and `scaling` (the architecture
    pass multiplies each channel by its marginal probability).
    """

    def __init__(self, spec: GroupSpec, name: str = ""):
        super().__init__()
        self.spec = spec
        self.name = name
        self.alpha = nn.Parameter(torch.zeros(spec.n_groups))
        self.active: int | None = None
        self.scaling = False
        self._scale: torch.Tensor | None = None  # per-forward cache, see DMCPSupernet.forward

    def extra_repr(self) -> str:
        s = self.spec
        return f"{self.name!r}, channels={s.channels}, min_ch={s.min_ch}, group={s.group}, n_groups={s.n_groups}"

    def transition_probs(self) -> torch.Tensor:
        """p_k = sigmoid(alpha_k) (Eq. 2)."""
        return torch.sigmoid(self.alpha)

    def marginals(self) -> torch.Tensor:
        """P(group k kept) = prod_{i<=k} p_i (Eq. 3)."""
        return torch.cumprod(self.transition_probs(), dim=0)

    def expected_channels(self) -> torch.Tensor:
        """E[C] = min_ch + group * sum_k P(group k kept) (Eq. 4), differentiable in alpha."""
        return self.spec.min_ch + self.spec.group * self.marginals().sum()

    def channel_scale(self) -> torch.Tensor:
        """[C] per-channel factor of the architecture pass: 1 for the minimum set, then each
        group's marginal probability repeated over its channels."""
        m = self.marginals()
        ones = torch.ones(self.spec.min_ch, dtype=m.dtype, device=m.device)
        return torch.cat([ones, m.repeat_interleave(self.spec.group)])

    def scale(self, channels: int, dtype: torch.dtype) -> torch.Tensor:
        """The first `channels` factors (cached during one supernet forward), in `dtype`."""
        s = self._scale if self._scale is not None else self.channel_scale()
        return s[:channels].to(dtype)

    def set_state(self, k: int | None) -> None:
        """Use the first min_ch + k * group channels in the weight passes (None: all)."""
        self.active = None if k is None else self.spec.channels_at(int(k))

    def sample(self, n_samples: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """States drawn from the chain (direct sampling)."""
        if self.spec.n_groups == 0:
            return torch.zeros(n_samples, dtype=torch.int64)
        return sample_chain(self.transition_probs(), n_samples, generator)

    def expected_state(self) -> int:
        """Expected sampling (ES): round(E[C]) snapped to the nearest state of the grid, as the
        official code does (`round(E - 1e-4)`, ties to the lower state)."""
        if self.spec.n_groups == 0:
            return 0
        e = round(float(self.expected_channels().detach()) - 1e-4)
        states = self.spec.states()
        return min(range(len(states)), key=lambda k: (abs(states[k] - e), k))
