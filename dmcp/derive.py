"""Deriving the pruned architecture from the learned chains (DMCP, Sec. 3.4).

* Expected sampling (ES, what the authors use): every gate's width is round(E[C]) snapped to its
  group grid. The official code never checks the result against the budget; we count its exact
  multiply-adds and, when they fall outside [band * T, T], repair it: drop the least probable kept
  group while above T, then add the most probable next group that still fits while below band * T.
* Direct sampling (DS): draw every gate's state from its chain and keep the first sample inside
  [band * T, T] (the official code keeps samples within +-1 % of T and counts each one with a
  forward pass; here thousands of samples are counted analytically in one vectorised call).
* Uniform width scaling, the baseline the paper compares with: one width multiplier for every
  prunable layer, the largest whose network stays within T.

Both return states (groups kept per gate) whose exported network's counted MAdds lie in
[band * T, T]; `derive` writes the arch.json record. Every budget and count here is in absolute
multiply-adds (MFLOPs appear only on the command line and in printed text).
"""
from __future__ import annotations

import copy
import time
from collections.abc import Sequence

import torch
from torch import nn

from dmcp.export import apply_widths
from dmcp.supernet import DMCPSupernet

__all__ = ["BudgetError", "expected_sampling", "repair", "direct_sampling", "derive", "uniform_scaling",
           "export_pruned", "arch_record"]


class BudgetError(RuntimeError):
    """No architecture on the group grid was found inside the budget band."""


def _madds(net: DMCPSupernet, states: Sequence[int]) -> int:
    return int(net.madds(net.channels_of(list(states))))


@torch.no_grad()
def repair(net: DMCPSupernet, states: Sequence[int], target: float, band: float = 0.95) -> list[int]:
    """Move `states` into [band * target, target] MAdds one group at a time, following the chains:
    while above the target remove the kept group with the lowest marginal probability; while below
    the band add the not-yet-kept group with the highest marginal probability whose MAdds still fit.
    Raises BudgetError when no single-group move can reach the band."""
    states = [int(k) for k in states]
    marg = [g.marginals().detach().double().cpu() for g in net.gates]
    lo = band * target
    f = _madds(net, states)
    while f > target:
        cands = [(float(marg[i][k - 1]), i) for i, k in enumerate(states) if k > 0]
        if not cands:
            raise BudgetError(f"the minimum architecture ({f:,} MAdds) is above the target {target:,.0f}")
        _, i = min(cands)
        states[i] -= 1
        f = _madds(net, states)
    n_groups = torch.tensor(net.n_states())
    while f < lo:
        # every single-group addition at once: [G, G] candidate states, one vectorised count
        cur = torch.tensor(states)
        trials = cur[None].repeat(len(states), 1) + torch.eye(len(states), dtype=torch.int64)
        ft = net.madds(net.channels_of(trials))
        next_marg = torch.tensor([float(marg[i][k]) if k < n_groups[i] else -1.0 for i, k in enumerate(states)],
                                 dtype=torch.float64)
        ok = (cur < n_groups) & (ft <= target)
        if not bool(ok.any()):
            raise BudgetError(f"{f:,} MAdds is below the band [{lo:,.0f}, {target:,.0f}] and every further "
                              f"group overshoots the target: use a finer --width-step")
        i = int(torch.where(ok, next_marg, torch.full_like(next_marg, -2.0)).argmax())
        states[i] += 1
        f = int(ft[i])
    return states


@torch.no_grad()
def expected_sampling(net: DMCPSupernet, target: float | None = None, band: float = 0.95) -> tuple[list[int], dict]:
    """ES states (round(E[C]) snapped to the grid); repaired into the band when a target is given.
    Returns (states, info) with the unrepaired MAdds and the number of groups moved."""
    states = [g.expected_state() for g in net.gates]
    info = {"es_madds": _madds(net, states), "repaired_groups": 0}
    if target is not None:
        fixed = repair(net, states, target, band)
        info["repaired_groups"] = sum(abs(a - b) for a, b in zip(fixed, states))
        states = fixed
    return states, info


@torch.no_grad()
def direct_sampling(net: DMCPSupernet, target: float, band: float = 0.95, n: int = 1,
                    batch: int = 4096, max_draws: int = 1_000_000,
                    generator: torch.Generator | None = None) -> tuple[list[list[int]], dict]:
    """`n` DS architectures inside [band * target, target] (rejection sampling from the chains,
    MAdds counted analytically for a whole batch of samples at once)."""
    kept, draws = [], 0
    while len(kept) < n and draws < max_draws:
        states = net.sample_markov(generator, batch)
        f = net.madds(net.channels_of(states))
        ok = (f <= target) & (f >= band * target)
        kept.extend(states[ok].tolist())
        draws += batch
    if len(kept) < n:
        raise BudgetError(f"direct sampling: {len(kept)} of {n} architectures in [{band * target:,.0f}, "
                          f"{target:,.0f}] MAdds after {draws:,} draws; the chains' FLOPs are far "
                          f"from the target (train the architecture longer, or use expected sampling)")
    return kept[:n], {"draws": draws, "accept_rate": len(kept) / draws}


def export_pruned(net: DMCPSupernet, states: Sequence[int] | None = None, channels: Sequence[int] | None = None,
                  copy_weights: bool = True) -> nn.Module:
    """The plain pruned network (torchvision classes, plain nn layers, no gates) for the given
    states or widths; `copy_weights` inherits the supernet's first channels."""
    if channels is None:
        channels = net.channels_of(list(states)).tolist() if states is not None else net.full_channels()
    plain = copy.deepcopy(net.net)
    apply_widths(plain, net.layer_widths(channels), copy_weights=copy_weights)
    leftover = [n for n, m in plain.named_modules() if type(m).__module__.startswith("dmcp")]
    if leftover:
        raise RuntimeError(f"export left dmcp modules in the network: {leftover[:5]}")
    return plain


def arch_record(net: DMCPSupernet, states: Sequence[int] | None, target_madds: float | None, method: str,
                extra: dict | None = None, channels: Sequence[int] | None = None) -> dict:
    """The arch.json content: per-gate and per-layer widths, MAdds, parameters, target MAdds.
    `states` on the group grid, or `channels` (any widths; the states are then None)."""
    if channels is None:
        channels = net.channels_of(list(states)).tolist()
    channels = [int(c) for c in channels]
    states = list(states) if states is not None else [None] * len(channels)
    madds = int(net.madds(channels))
    rec = {
        "method": method,
        "target_madds": target_madds,
        "madds": madds,
        "params": int(net.params(channels)),
        "full_madds": int(net.madds(net.full_channels())),
        "input_size": net.input_size,
        "builder": net.builder,
        "width": net.width,
        "gates": {g.name: {"channels": c, "state": None if k is None else int(k), "of": g.spec.channels,
                           "expected": round(float(g.expected_channels().detach()), 3)}
                  for g, c, k in zip(net.gates, channels, states)},
        "layers": net.layer_widths(channels),
    }
    if extra:
        rec.update(extra)
    return rec


@torch.no_grad()
def uniform_scaling(net: DMCPSupernet, target_madds: float) -> dict:
    """The uniform baseline at the same budget: every prunable width C becomes round(w * C) (a
    multiple of the grid's --channel-multiple, at least one group of it), with w the largest
    multiplier whose MAdds stay <= T (bisection; MAdds grow with w). Returns its arch record
    (method "uniform", with "width_multiplier")."""
    full = torch.tensor(net.full_channels(), dtype=torch.float64)
    prunable = torch.tensor([g.spec.n_groups > 0 for g in net.gates])
    m = max(1, int(net.width.get("multiple", 1)))

    def widths(w: float) -> torch.Tensor:
        c = ((full * w / m).round() * m).clamp(min=m)
        return torch.where(prunable, torch.minimum(c, full), full).long()

    target = float(target_madds)
    if float(net.madds(widths(0.0))) > target:
        raise BudgetError(f"the narrowest uniform network ({int(net.madds(widths(0.0))):,} MAdds) is above "
                          f"the target {target:,.0f}")
    lo, hi = 0.0, 1.0
    if float(net.madds(widths(1.0))) <= target:
        lo = 1.0
    for _ in range(60):
        if hi - lo < 1e-7:
            break
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if float(net.madds(widths(mid))) <= target else (lo, mid)
    return arch_record(net, None, target, "uniform", {"width_multiplier": lo}, channels=widths(lo).tolist())


def derive(net: DMCPSupernet, target_madds: float, method: str = "es", band: float = 0.95,
           generator: torch.Generator | None = None) -> dict:
    """Derive one architecture (`es` or `ds`) with MAdds inside [band * T, T] and return its arch
    record (with the derivation time in milliseconds)."""
    t0 = time.perf_counter()
    target = float(target_madds)
    if method == "es":
        states, info = expected_sampling(net, target, band)
    elif method == "ds":
        kept, info = direct_sampling(net, target, band, n=1, generator=generator)
        states = kept[0]
    else:
        raise ValueError(f"unknown derivation {method!r} (es or ds)")
    info["derive_ms"] = (time.perf_counter() - t0) * 1e3
    info["band"] = [band * target, target]
    return arch_record(net, states, target, method, {"derivation": info})
