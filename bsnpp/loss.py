"""BSN++ losses: BMN's boundary and map losses, the bi-directional terms, and our scale-balanced
re-sampling. Every denominator is guarded: a batch with no positive (or no negative) cell gives a
finite loss, where BMN's code divides by zero and trains on NaN.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from bsnpp.labels import valid_map_mask

__all__ = ["boundary_bce", "iou_balanced_reg_loss", "map_cls_loss", "scale_bins", "BSNPPLoss"]

_EPS = 1e-6  # BMN's epsilon inside the logs


def boundary_bce(pred: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """BMN's weighted binary logistic loss for boundary probabilities (BMN Eq. 4, `bi_loss`).

    Positives are target > 0.5 over the whole batch; with ratio = N / N+ the positive weight is
    0.5·ratio and the negative weight 0.5·ratio/(ratio − 1), i.e. 0.5·N/N+ and 0.5·N/N−, written in
    that guarded form: a class that is absent simply contributes nothing.
    """
    pred, target = pred.reshape(-1).float(), target.reshape(-1).float()
    pos = (target > threshold).float()
    n = pos.numel()
    n_pos, n_neg = pos.sum(), n - pos.sum()
    coef_1 = 0.5 * n / n_pos.clamp(min=1)
    coef_0 = 0.5 * n / n_neg.clamp(min=1)
    loss = coef_1 * pos * torch.log(pred + _EPS) + coef_0 * (1 - pos) * torch.log(1 - pred + _EPS)
    return -loss.mean()


def scale_bins(max_duration: int, tscale: int, num_bins: int, device=None) -> torch.Tensor:
    """Scale index [D] of each map row: log-spaced bins of the normalised duration (d + 1)/T
    between 1/T and 1 (T = 100, 4 bins: 1-3, 4-9, 10-31, 32-100 snippets)."""
    d = torch.arange(max_duration, device=device, dtype=torch.float64)
    rel = torch.log((d + 1) / tscale) / math.log(1.0 / tscale)  # 1 at one snippet, 0 at full length
    idx = ((1 - rel) * num_bins).floor().clamp(0, num_bins - 1)
    return idx.long()


def iou_balanced_reg_loss(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor,
                          bins: torch.Tensor | None = None, high: float = 0.7, low: float = 0.3) -> torch.Tensor:
    """BMN's IoU regression loss (Eq. 9 + its IoU-balanced sampling, `pem_reg_loss_func`).

    All cells with IoU > 0.7 are used; cells in (0.3, 0.7] are kept at random with probability
    N_high/N_mid and cells in (0, 0.3] (valid ones) with N_high/N_low; the loss is
    0.5·Σ w·(pred − gt)² / Σ w. With `bins` (the scale of each map row, scale-balanced
    re-sampling), the sampling and the average are done per scale bin and the bins are averaged
    with equal weight, so short and long proposals contribute comparably.
    pred, gt: [B, D, T]; mask: [D, T] bool (valid cells).
    """
    pred, gt = pred.float(), gt.float() * mask
    m = mask.expand_as(gt).float()
    if bins is None:
        groups = [torch.ones_like(m)]
    else:
        b = bins.view(1, -1, 1).expand_as(gt)
        groups = [(b == k).float() for k in range(int(bins.max()) + 1)]
    losses = []
    for g in groups:
        h = (gt > high).float() * g
        mid = ((gt <= high) & (gt > low)).float() * g
        lo = ((gt <= low) & (gt > 0)).float() * m * g
        n_h, n_m, n_l = h.sum(), mid.sum(), lo.sum()
        r_m = n_h / n_m.clamp(min=1)
        r_l = n_h / n_l.clamp(min=1)
        # BMN draws `rand * mid > 1 - r_m`; when N_high > N_mid (r_m > 1) that is true on every
        # non-mid cell too, invalid ones included. We restrict the draw to the mid (low) cells.
        keep_m = mid * (torch.rand_like(gt) > (1 - r_m)).float()
        keep_l = lo * (torch.rand_like(gt) > (1 - r_l)).float()
        w = h + keep_m + keep_l
        if w.sum() > 0:
            losses.append(0.5 * ((pred - gt) ** 2 * w).sum() / w.sum())
    if not losses:
        return pred.sum() * 0.0  # no positive anywhere: nothing to regress, keep the graph
    return torch.stack(losses).mean()


def map_cls_loss(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor,
                 bins: torch.Tensor | None = None, threshold: float = 0.9) -> torch.Tensor:
    """BMN's proposal classification loss (`pem_cls_loss_func`): weighted BCE with positives
    IoU > 0.9 and negatives the other valid cells, weights 0.5·N/N+ and 0.5·N/N−, summed over
    cells and divided by N (valid cells). With `bins` (scale-balanced re-sampling) the positive
    mass 0.5·N is split equally among the scale bins that hold positives."""
    pred, gt = pred.float(), gt.float() * mask
    m = mask.expand_as(gt).float()
    pos = (gt > threshold).float()
    neg = (gt <= threshold).float() * m
    n_pos, n_neg = pos.sum(), neg.sum()
    n = n_pos + n_neg
    if bins is None:
        w_pos = pos * 0.5 * n / n_pos.clamp(min=1)
    else:
        b = bins.view(1, -1, 1).expand_as(gt)
        w_pos = torch.zeros_like(pos)
        counts = [(pos * (b == k)).sum() for k in range(int(bins.max()) + 1)]
        filled = sum(int(c > 0) for c in counts)
        for k, c in enumerate(counts):
            if c > 0:
                w_pos = w_pos + pos * (b == k) * 0.5 * n / (filled * c)
    w_neg = neg * 0.5 * n / n_neg.clamp(min=1)
    loss = w_pos * torch.log(pred + _EPS) + w_neg * torch.log(1 - pred + _EPS)
    return -loss.sum() / n.clamp(min=1)


class BSNPPLoss(nn.Module):
    """The BSN++ objective (weights of the public reimplementation; BMN's are the special case):

        L = L_cbg(fwd) + L_cbg(bwd) + λ_c·MSE(feat_fwd, feat_bwd)
            + λ_pem · Σ_heads [ λ_reg·L_reg + L_cls ]

    L_cbg = boundary_bce(start) + boundary_bce(end); the backward pass is supervised with the roles
    swapped (its flipped 'start' output predicts ends). With one head, no backward pass,
    λ_pem = 1 and λ_reg = 10 this is exactly BMN's `tem_loss + 10·pem_reg + pem_cls`.
    """

    def __init__(self, tscale: int, reg_weight: float = 10.0,
                 pem_weight: float = 10.0, consistency_weight: float = 1.0,
                 scale_balanced: bool = True, num_scale_bins: int = 4):
        super().__init__()
        self.reg_weight, self.pem_weight, self.consistency_weight = reg_weight, pem_weight, consistency_weight
        self.scale_balanced = scale_balanced
        self.register_buffer("mask", torch.tensor(valid_map_mask(tscale, tscale)), persistent=False)
        self.register_buffer("bins", scale_bins(tscale, tscale, num_scale_bins), persistent=False)

    def forward(self, out: dict, target: dict) -> dict:
        losses = {"cbg": boundary_bce(out["start"], target["start"]) + boundary_bce(out["end"], target["end"])}
        if "start_bwd" in out:
            losses["cbg_bwd"] = (boundary_bce(out["end_bwd"], target["start"])
                                 + boundary_bce(out["start_bwd"], target["end"]))
            losses["consistency"] = F.mse_loss(out["feat"].float(), out["feat_bwd"].float())
        bins = self.bins if self.scale_balanced else None
        gt = target["iou_map"]
        reg = [iou_balanced_reg_loss(out["reg"][:, h], gt, self.mask, bins) for h in range(out["reg"].shape[1])]
        cls = [map_cls_loss(out["cls"][:, h], gt, self.mask, bins) for h in range(out["cls"].shape[1])]
        losses["reg"] = torch.stack(reg).sum()
        losses["cls"] = torch.stack(cls).sum()
        total = losses["cbg"] + losses.get("cbg_bwd", 0) + self.consistency_weight * losses.get("consistency", 0)
        total = total + self.pem_weight * (self.reg_weight * losses["reg"] + losses["cls"])
        losses["total"] = total
        return losses
