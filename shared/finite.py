"""Fail fast on a non-finite loss, naming the term that went bad.

Every training loop checks its loss before ``backward()``: a NaN that reaches the optimizer poisons
every weight, and the run then trains on garbage for hours. The error names where it happened and
every term's value, so the first line of the log says which loss exploded.
"""
from __future__ import annotations

import torch


def check_finite(losses: dict, where: str, total: torch.Tensor | None = None) -> None:
    """Raise ``FloatingPointError`` when ``total`` (default: every term) is NaN or infinite.

    ``losses`` maps term names to scalar tensors or floats; ``where`` says when (e.g. ``"epoch 3,
    iteration 7"``). The message lists the non-finite terms (``['total']`` when only the given total
    is) and the value of every term.
    """
    def finite(v) -> bool:
        return bool(torch.isfinite(torch.as_tensor(v)).all())

    if finite(total) if total is not None else all(finite(v) for v in losses.values()):
        return
    bad = [k for k, v in losses.items() if not finite(v)]
    values = {k: float(torch.as_tensor(v).detach().float().sum()) for k, v in losses.items()}
    raise FloatingPointError(f"non-finite loss at {where}: terms {bad or ['total']} ({values})")
