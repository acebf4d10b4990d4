"""Stochastic Gradient Langevin Dynamics on the shared parameters (ST-NAS §3.2, abstract) and the
per-step random streams that make paths and noise identical on every rank.

SGLD (Welling & Teh 2011) with L̂ the batch-mean loss and N the training-set size:

    θ ← θ − η ∇L̂(θ) + sqrt(2 η τ / N) · ξ,   ξ ~ N(0, I),

i.e. Langevin dynamics on the tempered posterior exp(−N L(θ) / τ). τ = 0 is plain SGD, bit for bit
(the noise is skipped, not multiplied by zero). Momentum and weight decay, when given, act on the
gradient exactly as in `torch.optim.SGD` (weight decay is the Gaussian prior's gradient).
"""
from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["SGLD", "step_seed", "step_generator", "PATH", "NOISE", "EVOLUTION", "noise_std"]

# Stream ids: one independent generator per (seed, stream, step).
PATH, NOISE, EVOLUTION = 0, 1, 2


def step_seed(seed: int, step: int, stream: int) -> int:
    """A 63-bit seed derived from (seed, stream, step) by numpy's SeedSequence (well mixed:
    neighbouring steps give unrelated streams)."""
    state = np.random.SeedSequence([int(seed), int(stream), int(step)]).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))


def step_generator(seed: int, step: int, stream: int, device="cpu") -> torch.Generator:
    """The generator of one step: the same on every rank, and its whole state is (seed, step), so
    a resumed run draws exactly what an uninterrupted one draws."""
    g = torch.Generator(device=torch.device(device))
    g.manual_seed(step_seed(seed, step, stream))
    return g


def noise_std(lr: float, temperature: float, dataset_size: int) -> float:
    """sqrt(2 η τ / N), the standard deviation of the injected noise per coordinate and step."""
    return math.sqrt(2.0 * lr * temperature / dataset_size)


class SGLD(torch.optim.SGD):
    """`SGLD(params, lr, temperature, dataset_size)`: an SGD step, then Gaussian noise of std
    sqrt(2 η τ / N) on every parameter that received a gradient (under single-path training only
    the sampled path's parameters do, as only they take the SGD step). `step(generator=g)` draws
    the noise from `g` (on the parameters' device) so that every rank adds the same noise."""

    def __init__(self, params, lr: float, temperature: float = 1.0, dataset_size: int = 1, momentum: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        if temperature < 0:
            raise ValueError(f"temperature {temperature}: must be >= 0 (0 is SGD)")
        if int(dataset_size) < 1:
            raise ValueError(f"dataset_size {dataset_size}: must be the (positive) number of training images")
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
        self.defaults.update(temperature=float(temperature), dataset_size=int(dataset_size))
        for group in self.param_groups:
            group.setdefault("temperature", float(temperature))
            group.setdefault("dataset_size", int(dataset_size))

    @torch.no_grad()
    def step(self, closure=None, generator: torch.Generator | None = None):
        loss = super().step(closure)
        for group in self.param_groups:
            if group["temperature"] == 0:
                continue
            std = noise_std(group["lr"], group["temperature"], group["dataset_size"])
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(torch.randn(p.shape, generator=generator, device=p.device, dtype=p.dtype), alpha=std)
        return loss
