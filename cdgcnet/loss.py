"""Training losses: L = L_final + w_coarse * L_coarse + w_aux * L_aux (Sec. 3.4; weights 1.0 / 0.4).

The final and the coarse predictions are supervised with online hard example mining as in CCNet's
``OhemCrossEntropy2d`` (speedinghzl/CCNet, ``loss/loss.py``): among the valid pixels of the batch,
keep those whose ground-truth probability is at most a threshold; the threshold is 0.7, raised to
the ``min_kept``-th smallest ground-truth probability when that is larger, so that at least
``min_kept`` pixels (100,000) are kept; when the batch has no more than ``min_kept`` valid pixels
all are kept. The auxiliary head uses plain cross-entropy (CCNet's ``CriterionOhemDSN``).
``ohem=False`` uses plain cross-entropy everywhere. Label 255 is ignored; a batch without any valid
pixel gives a finite 0 (with a gradient of zeros, so DDP still sees every parameter used).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["OhemCrossEntropy", "cross_entropy", "SegCriterion"]


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255,
                  keep: torch.Tensor | None = None) -> torch.Tensor:
    """Mean CE over the valid (and kept) pixels; 0 when there is none."""
    ce = F.cross_entropy(logits.float(), target, ignore_index=ignore_index, reduction="none")
    mask = target != ignore_index
    if keep is not None:
        mask = mask & keep
    return (ce * mask).sum() / mask.sum().clamp(min=1)


class OhemCrossEntropy(nn.Module):
    """CCNet's OHEM cross-entropy (threshold on the ground-truth probability, a minimum kept)."""

    def __init__(self, thresh: float = 0.7, min_kept: int = 100_000, ignore_index: int = 255):
        super().__init__()
        if not 0 < thresh <= 1 or min_kept < 0:
            raise ValueError(f"OHEM: need 0 < thresh <= 1 and min_kept >= 0, got {thresh}, {min_kept}")
        self.thresh, self.min_kept, self.ignore_index = float(thresh), int(min_kept), ignore_index

    @torch.no_grad()
    def kept(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Boolean [B, H, W]: the valid pixels OHEM keeps."""
        valid = target != self.ignore_index
        n_valid = int(valid.sum())
        if n_valid == 0 or self.min_kept >= n_valid:
            return valid
        prob = logits.float().softmax(1)
        p_gt = prob.gather(1, torch.where(valid, target, 0).unsqueeze(1)).squeeze(1)
        threshold = self.thresh
        if self.min_kept > 0:
            kth = float(p_gt[valid].kthvalue(min(n_valid, self.min_kept)).values)
            threshold = max(threshold, kth)
        return valid & (p_gt <= threshold)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return cross_entropy(logits, target, self.ignore_index, self.kept(logits, target))


class SegCriterion(nn.Module):
    """The weighted sum over the model's outputs, each upsampled (bilinear) to the label size."""

    def __init__(self, ohem: bool = True, thresh: float = 0.7, min_kept: int = 100_000,
                 coarse_weight: float = 1.0, aux_weight: float = 0.4, ignore_index: int = 255):
        super().__init__()
        self.ohem = OhemCrossEntropy(thresh, min_kept, ignore_index) if ohem else None
        self.weights = {"final": 1.0, "coarse": float(coarse_weight), "aux": float(aux_weight)}
        self.ignore_index = ignore_index

    def forward(self, outputs: dict, target: torch.Tensor) -> dict:
        """Returns each term (``loss_final``, ``loss_coarse``, ``loss_aux``) and their weighted ``loss``."""
        terms = {}
        for name, w in self.weights.items():
            if name not in outputs or w == 0:
                continue
            logits = F.interpolate(outputs[name], size=target.shape[-2:], mode="bilinear", align_corners=False)
            if self.ohem is not None and name != "aux":
                terms[f"loss_{name}"] = self.ohem(logits, target)
            else:
                terms[f"loss_{name}"] = cross_entropy(logits, target, self.ignore_index)
        terms["loss"] = sum(self.weights[k[5:]] * v for k, v in terms.items())
        return terms
