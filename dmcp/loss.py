"""DMCP's losses: the FLOPs budget loss (Sec. 3.3, Eq. 8; official `log_l1`), in-place
distillation of the sandwich rule, and (label-smoothed) cross-entropy."""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["budget_loss", "distill_kl", "classification_loss"]


def budget_loss(expected_madds: torch.Tensor, target_madds: float, kind: str = "log_l1",
                band: float = 0.95, far: float = 200.0, far_ratio: float = 0.1) -> torch.Tensor:
    """Budget regulariser on E[FLOPs]; both arguments in multiply-adds, like every count here.

    The official formula is written in MFLOPs (its `far` threshold of 200, the offset of the log,
    the scale of l1 / l2), so it is evaluated on E and T in millions. `log_l1` (the official
    default), with E the expected and T the target MFLOPs:
        ratio = far_ratio (0.1) if |E - T| > far (200 MFLOPs) else 1
        E <  band * T:        log(ratio * |E - T|)
        band * T <= E < T:    0            (the band [0.95 T, T) costs nothing)
        E >= T:               log(ratio * |E - band * T|)
    Also `l1` = |E - T| and `l2` = (E - T)^2 (official alternatives). The weight (0.1) is
    applied by the caller.
    """
    e = expected_madds / 1e6
    t = float(target_madds) / 1e6
    if kind == "l1":
        return (e - t).abs()
    if kind == "l2":
        return (e - t) ** 2
    if kind != "log_l1":
        raise ValueError(f"unknown budget loss {kind!r} (log_l1, l1, l2)")
    value = float(e.detach())
    ratio = far_ratio if abs(value - t) > far else 1.0
    if value < band * t:
        return torch.log(ratio * (e - t).abs())
    if value < t:
        return e * 0.0
    return torch.log(ratio * (e - band * t).abs())


def distill_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """In-place distillation (sandwich rule): KL(teacher || student) at temperature T, summed
    over classes, averaged over the batch, times T^2; the teacher (max architecture) is detached."""
    t = float(temperature)
    log_p = F.log_softmax(student_logits.float() / t, dim=1)
    q = F.softmax(teacher_logits.detach().float() / t, dim=1)
    return F.kl_div(log_p, q, reduction="none").sum(dim=1).mean() * (t * t)


def classification_loss(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy; with smoothing s the target is (1 - s) one-hot + s / K everywhere, the
    official LabelSmoothCELoss."""
    return F.cross_entropy(logits.float(), target, label_smoothing=float(label_smoothing))
