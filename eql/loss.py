"""Classification losses of the R-CNN box head: Equalization Loss (EQL), its softmax form for
image classification, the sigmoid / softmax baselines, and EQLv2 as a clearly labelled extra.

Label convention (the official code's, detectron2's): ``logits [N, C]`` for the C foreground
classes, ``gt_classes [N]`` in ``[0, C]`` where ``C`` means background. torchvision numbers
classes the other way (0 = background, 1..C = classes): convert with ``torchvision_to_gt_classes``.

Sigmoid EQL (Tan et al., CVPR 2020, Eq. 3-5; tztztztztz/eql.detectron2 ``EQLFastRCNNOutputs``):

    L = sum_i sum_j w_ij * BCEWithLogits(z_ij, y_ij) / N
    w_ij = 1 - E(r_i) * T_lambda(f_j) * (1 - y_ij)

E(r) = 1 for a foreground proposal, 0 for a background one (background proposals keep every
negative term); T_lambda(f) = 1 when the class's image frequency f < lambda; N = number of
proposals (not divided by C, not averaged over positives).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "equalization_loss", "eql_weights", "tail_mask", "EqualizationLoss", "sigmoid_bce_loss", "SigmoidBCELoss",
    "softmax_ce_loss", "SoftmaxCELoss", "softmax_equalization_loss", "SoftmaxEQL", "EQLv2",
    "torchvision_to_gt_classes", "build_classification_loss",
]


def _check(logits: torch.Tensor, gt_classes: torch.Tensor, n_classes: int) -> None:
    if logits.dim() != 2:
        raise ValueError(f"logits must be [N, C], got shape {tuple(logits.shape)}")
    if gt_classes.dim() != 1 or gt_classes.shape[0] != logits.shape[0]:
        raise ValueError(f"gt_classes must be [N] with N = {logits.shape[0]}, got shape {tuple(gt_classes.shape)}")
    if gt_classes.numel() and (int(gt_classes.min()) < 0 or int(gt_classes.max()) > n_classes):
        raise ValueError(f"gt_classes must lie in [0, {n_classes}] ({n_classes} = background), got "
                         f"[{int(gt_classes.min())}, {int(gt_classes.max())}]")


def torchvision_to_gt_classes(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """torchvision labels (0 = background, 1..C) -> official gt_classes (0..C-1, C = background)."""
    return torch.where(labels > 0, labels - 1, torch.full_like(labels, num_classes))


def tail_mask(freq_info: torch.Tensor, lambda_: float) -> torch.Tensor:
    """T_lambda(f) as a bool [C]: f < lambda. The official code holds f as float32 and compares it
    with the Python float lambda in float32; we do the same so boundary classes agree."""
    return freq_info.to(torch.float32) < lambda_


def _expand_targets(logits: torch.Tensor, gt_classes: torch.Tensor) -> torch.Tensor:
    """One-hot over C + 1 columns, background column dropped: a background row is all zeros."""
    n, c = logits.shape
    target = logits.new_zeros(n, c + 1)
    target[torch.arange(n, device=logits.device), gt_classes] = 1
    return target[:, :c]


def eql_weights(gt_classes: torch.Tensor, tail: torch.Tensor, target: torch.Tensor,
                keep_mask: torch.Tensor | None = None) -> torch.Tensor:
    """w_ij = 1 - E(r_i) T_lambda(f_j) (1 - y_ij) (Eq. 4), as a float [N, C] matrix.

    ``keep_mask [N, C]`` (optional, off in the official code): entries forced to weight 1, the
    paper's Section 4.2 rule for categories with image-level annotations in the proposal's image.
    """
    n, c = target.shape
    fg = (gt_classes != c).to(target.dtype)                 # E(r): 1 foreground, 0 background
    w = 1 - fg[:, None] * tail.to(target.dtype)[None, :] * (1 - target)
    if keep_mask is not None:
        if keep_mask.shape != w.shape:
            raise ValueError(f"keep_mask must be [N, C] = {tuple(w.shape)}, got {tuple(keep_mask.shape)}")
        w = torch.where(keep_mask.bool(), torch.ones_like(w), w)
    return w


def equalization_loss(logits: torch.Tensor, gt_classes: torch.Tensor, freq_info: torch.Tensor,
                      lambda_: float, keep_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Sigmoid Equalization Loss (Eq. 5): ``sum(w * BCE) / N`` over ``logits [N, C]``.

    ``gt_classes [N]`` in [0, C] (C = background); ``freq_info [C]`` image frequency of each class
    (images containing it / annotated training images); ``lambda_`` the tail threshold (LVIS v0.5:
    0.00177, v1: 0.0011). Equal to the official loss in value and gradient. ``N = 0`` gives 0.
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be [N, C], got shape {tuple(logits.shape)}")
    n, c = logits.shape
    _check(logits, gt_classes, c)
    if freq_info.shape != (c,):
        raise ValueError(f"freq_info must be [C] = [{c}], got shape {tuple(freq_info.shape)}")
    if n == 0:
        return logits.sum() * 0
    target = _expand_targets(logits, gt_classes)
    w = eql_weights(gt_classes, tail_mask(freq_info, lambda_).to(logits.device), target, keep_mask)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return torch.sum(bce * w) / n


class EqualizationLoss(nn.Module):
    """Module form of ``equalization_loss``: holds ``freq_info`` (a buffer) and lambda.

    ``forward(logits [N, C], gt_classes [N], keep_mask=None)``. ``num_tail`` says how many classes
    T_lambda selects (LVIS v0.5 with lambda 0.00177: the 915 rare + common classes).
    """

    def __init__(self, freq_info, lambda_: float = 0.00177):
        super().__init__()
        freq = torch.as_tensor(freq_info, dtype=torch.float32).reshape(-1)
        if not torch.isfinite(freq).all() or (freq < 0).any():
            raise ValueError("freq_info must be finite and non-negative")
        self.register_buffer("freq_info", freq)
        self.lambda_ = float(lambda_)

    @property
    def num_tail(self) -> int:
        return int(tail_mask(self.freq_info, self.lambda_).sum())

    def forward(self, logits, gt_classes, keep_mask=None):
        return equalization_loss(logits, gt_classes, self.freq_info, self.lambda_, keep_mask)

    def extra_repr(self) -> str:
        return f"lambda_={self.lambda_}, classes={self.freq_info.numel()}, tail={self.num_tail}"


def sigmoid_bce_loss(logits: torch.Tensor, gt_classes: torch.Tensor) -> torch.Tensor:
    """The sigmoid baseline: EQL with every weight 1, ``sum(BCE) / N`` (C logits, no background)."""
    _check(logits, gt_classes, logits.shape[1] if logits.dim() == 2 else 0)
    if logits.shape[0] == 0:
        return logits.sum() * 0
    target = _expand_targets(logits, gt_classes)
    return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / logits.shape[0]


class SigmoidBCELoss(nn.Module):
    def forward(self, logits, gt_classes, keep_mask=None):
        return sigmoid_bce_loss(logits, gt_classes)


def softmax_ce_loss(logits: torch.Tensor, gt_classes: torch.Tensor) -> torch.Tensor:
    """The softmax baseline (Mask R-CNN's): ``logits [N, C + 1]`` with the background logit LAST
    (column C, detectron2's layout), cross-entropy averaged over the N proposals."""
    if logits.dim() != 2:
        raise ValueError(f"logits must be [N, C + 1], got shape {tuple(logits.shape)}")
    _check(logits[:, :-1], gt_classes, logits.shape[1] - 1)
    if logits.shape[0] == 0:
        return logits.sum() * 0
    return F.cross_entropy(logits, gt_classes)


class SoftmaxCELoss(nn.Module):
    def forward(self, logits, gt_classes, keep_mask=None):
        return softmax_ce_loss(logits, gt_classes)


def softmax_equalization_loss(logits: torch.Tensor, targets: torch.Tensor, freq_info: torch.Tensor,
                              lambda_: float, gamma: float = 0.9, generator: torch.Generator | None = None,
                              beta: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """Softmax EQL for image classification (paper Eq. 7-8, CIFAR-100-LT / ImageNet-LT):

        p~_j = exp(z_j) / sum_k w~_k exp(z_k),   w~_k = 1 - beta T_lambda(f_k) (1 - y_k),
        L = -log p~_y,  beta ~ Bernoulli(gamma), drawn independently per sample and class.

    ``logits [N, C]``, ``targets [N]`` in [0, C). Computed stably as
    ``logsumexp(z + log w~) - z_y`` (w~_y = 1, so it is finite). ``beta [N, C]`` may be given
    (tests, reproducibility); otherwise it is drawn with ``generator``.
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be [N, C], got shape {tuple(logits.shape)}")
    n, c = logits.shape
    if targets.shape != (n,) or (n and (int(targets.min()) < 0 or int(targets.max()) >= c)):
        raise ValueError(f"targets must be [N] class indices in [0, {c})")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma is a probability, got {gamma}")
    y = F.one_hot(targets, c).to(logits.dtype)
    if beta is None:
        beta = (torch.rand((n, c), generator=generator, device="cpu") < gamma).to(logits.device)
    w = 1 - beta.to(logits.dtype) * tail_mask(freq_info, lambda_).to(logits.device, logits.dtype)[None] * (1 - y)
    z = logits + torch.log(w)                           # log 0 = -inf removes suppressed classes
    loss = torch.logsumexp(z, dim=1) - logits.gather(1, targets[:, None])[:, 0]
    if reduction == "mean":
        return loss.mean() if n else logits.sum() * 0
    if reduction == "sum":
        return loss.sum()
    return loss


class SoftmaxEQL(nn.Module):
    """Module form of ``softmax_equalization_loss`` (holds freq_info, lambda, gamma); beta is drawn
    from the global torch RNG in training and is 0 in eval mode (plain cross-entropy)."""

    def __init__(self, freq_info, lambda_: float, gamma: float = 0.9):
        super().__init__()
        self.register_buffer("freq_info", torch.as_tensor(freq_info, dtype=torch.float32).reshape(-1))
        self.lambda_, self.gamma = float(lambda_), float(gamma)

    def forward(self, logits, targets):
        return softmax_equalization_loss(logits, targets, self.freq_info, self.lambda_,
                                         self.gamma if self.training else 0.0)


class EQLv2(nn.Module):
    """EXTRA, not the CVPR 2020 method: EQLv2 (Tan et al., CVPR 2021, tztztztztz/eqlv2), gradient-
    guided re-weighting of the sigmoid BCE.

    Per class j it accumulates the positive and negative gradient magnitudes |dL/dz| seen so far
    (weighted, summed over ranks); with g_j = pos_j / neg_j the weights are
    ``neg_w_j = 1 / (1 + exp(-gamma (g_j - mu)))`` and ``pos_w_j = 1 + alpha (1 - neg_w_j)``;
    the first call uses weight 1. Loss ``sum(w * BCE) / N``. Defaults gamma 12, mu 0.8, alpha 4.

    Deviation: the official head has one extra objectness logit (C + 1 sigmoid outputs, weight 1);
    here it runs on our C-logit head, background proposals having an all-zero target. The
    statistics are buffers, so they are checkpointed and resumed with the model.
    """

    def __init__(self, num_classes: int, gamma: float = 12.0, mu: float = 0.8, alpha: float = 4.0):
        super().__init__()
        self.num_classes, self.gamma, self.mu, self.alpha = int(num_classes), float(gamma), float(mu), float(alpha)
        self.register_buffer("pos_grad", torch.zeros(self.num_classes))
        self.register_buffer("neg_grad", torch.zeros(self.num_classes))
        self.register_buffer("started", torch.zeros((), dtype=torch.bool))

    def weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(pos_w, neg_w), each [C]."""
        if not bool(self.started):
            ones = torch.ones_like(self.pos_grad)
            return ones, ones
        ratio = self.pos_grad / (self.neg_grad + 1e-10)
        neg_w = 1 / (1 + torch.exp(-self.gamma * (ratio - self.mu)))
        return 1 + self.alpha * (1 - neg_w), neg_w

    def forward(self, logits, gt_classes, keep_mask=None):
        _check(logits, gt_classes, logits.shape[1] if logits.dim() == 2 else 0)
        n, c = logits.shape
        if c != self.num_classes:
            raise ValueError(f"EQLv2 was built for {self.num_classes} classes, logits have {c}")
        if n == 0:
            return logits.sum() * 0
        target = _expand_targets(logits, gt_classes)
        pos_w, neg_w = self.weights()
        w = pos_w[None] * target + neg_w[None] * (1 - target)
        loss = torch.sum(F.binary_cross_entropy_with_logits(logits, target, reduction="none") * w) / n
        if self.training:
            self._collect(logits.detach(), target, w.detach())
        return loss

    @torch.no_grad()
    def _collect(self, logits, target, w) -> None:
        grad = torch.abs(target * (torch.sigmoid(logits) - 1) + (1 - target) * torch.sigmoid(logits))
        pos = torch.sum(grad * target * w, dim=0).float()
        neg = torch.sum(grad * (1 - target) * w, dim=0).float()
        import torch.distributed as tdist
        if tdist.is_available() and tdist.is_initialized():
            both = torch.stack([pos, neg])
            tdist.all_reduce(both)
            pos, neg = both[0], both[1]
        self.pos_grad += pos
        self.neg_grad += neg
        self.started.fill_(True)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, gamma={self.gamma}, mu={self.mu}, alpha={self.alpha}"


def build_classification_loss(name: str, num_classes: int, freq_info=None, lambda_: float = 0.00177,
                              eqlv2_gamma: float = 12.0, eqlv2_mu: float = 0.8, eqlv2_alpha: float = 4.0) -> nn.Module:
    """``ce`` (softmax, C + 1 logits), ``sigmoid``, ``eql`` or ``eqlv2`` (C logits)."""
    if name == "ce":
        return SoftmaxCELoss()
    if name == "sigmoid":
        return SigmoidBCELoss()
    if name == "eql":
        if freq_info is None:
            raise ValueError("--loss eql needs the class frequencies (freq_info)")
        return EqualizationLoss(freq_info, lambda_)
    if name == "eqlv2":
        return EQLv2(num_classes, eqlv2_gamma, eqlv2_mu, eqlv2_alpha)
    raise ValueError(f"unknown loss {name!r}: use ce, sigmoid, eql or eqlv2")


def prior_bias(prior_prob: float = 0.001) -> float:
    """-log((1 - pi) / pi): the classifier bias that makes every initial sigmoid score pi."""
    return -math.log((1 - prior_prob) / prior_prob)
