"""AENet's objective and its variants (paper Sec. 4, Eq. 1-3; weights as the paper gives them).

* Semantic, Eq. (1):  L_{C,S} = L_C + λ_f L_{S^f} + λ_s L_{S^s} + λ_i L_{S^i}, λ_f = 1,
  λ_s = 0.1, λ_i = 0.01; L_C, L_{S^s}, L_{S^i} softmax cross-entropy, L_{S^f} binary
  cross-entropy over the 40 attributes.
* Geometric, Eq. (2): L_{C,G} = L_C + λ_d L_{G^d} + λ_r L_{G^r}, λ_d = λ_r = 0.1, MSE between the
  predicted 14 x 14 maps and the targets.
* AENet_C,S,G, Eq. (3): the sum of every term above (the paper's text is not public in a form we
  could check: recorded as a choice in the README).

Variants (the paper's ablations) are sets of terms: ``C`` (the baseline), ``S`` (AENet_S: the
semantic heads alone, spoof score from S^s), ``CS``, ``CG``, ``CSG`` and the leave-one-out
``CSG-Sf``, ``CSG-Ss``, ``CSG-Si``, ``CSG-Gd``, ``CSG-Gr``. ``+Se`` adds the environment head
(λ_e L_{S^e}, ours, off by default as in the released model).

Masks: a geometric term averages the per-sample MSE over the samples whose target is known
(``depth_mask`` / ``reflect_mask``, see data.py); an auxiliary label of -1 (unknown) drops that
sample from that term. A term with no valid sample in the batch is 0 (still part of the graph).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

ALL = ("C", "Sf", "Ss", "Si", "Gd", "Gr")
VARIANTS = {
    "C": ("C",),
    "S": ("Sf", "Ss", "Si"),
    "CS": ("C", "Sf", "Ss", "Si"),
    "CG": ("C", "Gd", "Gr"),
    "CSG": ALL,
    **{f"CSG-{t}": tuple(x for x in ALL if x != t) for t in ("Sf", "Ss", "Si", "Gd", "Gr")},
}
PAPER_NAMES = {"C": "baseline (C)", "S": "AENet_S", "CS": "AENet_C,S", "CG": "AENet_C,G",
               "CSG": "AENet_C,S,G", "CSG-Sf": "AENet_C,S,G w/o S^f", "CSG-Ss": "AENet_C,S,G w/o S^s",
               "CSG-Si": "AENet_C,S,G w/o S^i", "CSG-Gd": "AENet_C,S,G w/o G^d",
               "CSG-Gr": "AENet_C,S,G w/o G^r"}
DEFAULT_WEIGHTS = {"C": 1.0, "Sf": 1.0, "Ss": 0.1, "Si": 0.01, "Se": 0.01, "Gd": 0.1, "Gr": 0.1}


def variant_terms(name: str, env_head: bool = False) -> tuple:
    """The loss terms (and heads) of a variant name; ``env_head`` adds Se."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose from {sorted(VARIANTS)}")
    terms = VARIANTS[name]
    return terms + ("Se",) if env_head else terms


def _ce(logits, target):
    """Softmax cross-entropy over the samples whose label is known (>= 0)."""
    valid = target >= 0
    if not valid.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[valid], target[valid])


def attribute_bce(logits, target):
    """L_{S^f}: binary cross-entropy averaged over the 40 attributes and the samples with known
    attributes (unknown = -1)."""
    valid = (target >= 0).all(dim=1)
    if not valid.any():
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logits[valid], target[valid])


def masked_mse(pred, target, mask):
    """L_{G^d} / L_{G^r}: per-sample mean squared error over the map, averaged over the samples
    with ``mask = 1``; 0 when the batch has none (never a target invented for the others)."""
    per_sample = ((pred - target) ** 2).flatten(1).mean(1)
    mask = mask.to(per_sample.dtype)
    return (per_sample * mask).sum() / mask.sum().clamp(min=1.0)


class AENetLoss(nn.Module):
    """The weighted sum of a variant's terms. ``forward(out, batch)`` returns every term (plain,
    unweighted) and ``total`` = Σ λ_t L_t."""

    def __init__(self, terms=ALL, weights: dict | None = None):
        super().__init__()
        self.terms = tuple(terms)
        self.weights = {**DEFAULT_WEIGHTS, **(weights or {})}

    def forward(self, out: dict, batch: dict) -> dict:
        out = {k: v.float() for k, v in out.items()}  # losses in fp32 under autocast
        losses = {}
        if "C" in self.terms:
            losses["C"] = _ce(out["live"], batch["live"])
        if "Sf" in self.terms:
            losses["Sf"] = attribute_bce(out["attribute"], batch["attribute"])
        if "Ss" in self.terms:
            losses["Ss"] = _ce(out["attack"], batch["attack"])
        if "Si" in self.terms:
            losses["Si"] = _ce(out["light"], batch["light"])
        if "Se" in self.terms:
            losses["Se"] = _ce(out["env"], batch["env"])
        if "Gd" in self.terms:
            losses["Gd"] = masked_mse(out["depth"], batch["depth"], batch["depth_mask"])
        if "Gr" in self.terms:
            losses["Gr"] = masked_mse(out["reflect"], batch["reflect"], batch["reflect_mask"])
        losses["total"] = sum(self.weights[t] * losses[t] for t in self.terms)
        return losses
