"""Box classification losses over label sets, and the matching test-time scores.

Logits are ``[N, C + 1]`` with the background in column 0 (torchvision's convention); a proposal's
target is its label set ``y`` (bool ``[N, C + 1]``): the matched object's labels, or ``{0}`` for a
background proposal.

* ``concurrent_softmax_loss`` (the paper's Eq. for the concurrent softmax; its exact form is not
  verified against the paper, see README)::

      σ*_i = e^{z_i} / ( Σ_{j≠i} (1 − y_j)(1 − r_ij) e^{z_j} + e^{z_i} ),
      L = − Σ_i y_i log σ*_i / Σ_i y_i

  r_ij is the concurrent rate of class j given class i (``data.concurrent_rates``; the background is
  never concurrent: r_0j = r_i0 = 0). Another label of the same object (y_j = 1) and, in proportion
  r_ij, a class that often co-labels class i are taken out of i's denominator, so they are not pushed
  down. Computed as ``z_i − logsumexp_j(z_j + log w_ij)`` with w_ii = 1, w_ij = (1 − y_j)(1 − r_ij):
  stable for any logits, and equal to softmax cross-entropy for a single label (or r = 0, one label).
* ``softmax_loss``: softmax cross-entropy against the label set as a uniform distribution,
  −Σ_i (y_i / Σ y) log softmax(z)_i: the labels of one object compete (the baseline).
* ``sigmoid_loss``: binary cross-entropy on the C foreground logits (column 0 unused), summed over
  classes and averaged over proposals.

Scores (``class_scores``): ``softmax`` (softmax over C + 1, background dropped), ``concurrent`` (σ*
with y = 0: e^{z_i} / (e^{z_i} + Σ_{j≠i} (1 − r_ij) e^{z_j}), a class is not diluted by the classes that
co-label it) and ``sigmoid``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["concurrent_softmax_loss", "softmax_loss", "sigmoid_loss", "class_scores", "LabelSetLoss", "LOSSES"]
LOSSES = ("softmax", "concurrent", "sigmoid")


def _check(logits: torch.Tensor, label_sets: torch.Tensor) -> torch.Tensor:
    if logits.shape != label_sets.shape or logits.dim() != 2:
        raise ValueError(f"logits {tuple(logits.shape)} and label sets {tuple(label_sets.shape)} must both be [N, C + 1]")
    y = label_sets.bool()
    if len(y) and not bool(y.any(1).all()):
        raise ValueError("every proposal needs a non-empty label set ({0} for background)")
    return y


def concurrent_softmax_loss(logits: torch.Tensor, label_sets: torch.Tensor, rates: torch.Tensor) -> torch.Tensor:
    """Concurrent softmax cross-entropy, averaged over the N proposals (see the module docstring).

    rates: ``[C + 1, C + 1]`` concurrent rates r_ij (row i = the class whose probability is computed).
    Only the (proposal, positive label) pairs are materialised: ``P x (C + 1)`` with P = Σ y.
    """
    y = _check(logits, label_sets)
    if logits.numel() == 0:
        return logits.sum() * 0.0
    z = logits.float()
    n, i = torch.nonzero(y, as_tuple=True)                              # positive pairs
    w = (1.0 - rates.to(z)[i]) * (~y[n]).to(z)                          # (1 − r_ij)(1 − y_j)
    w[torch.arange(len(i), device=z.device), i] = 1.0                   # the class itself
    log_den = torch.logsumexp(z[n] + torch.log(w), dim=1)               # log 0 = −inf drops a term
    nll = log_den - z[n, i]
    per_sample = torch.zeros(len(z), device=z.device, dtype=z.dtype).index_add_(0, n, nll)
    return (per_sample / y.sum(1).to(z)).mean()


def softmax_loss(logits: torch.Tensor, label_sets: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy against the uniform distribution over the label set, averaged over N."""
    y = _check(logits, label_sets).to(torch.float32)
    if logits.numel() == 0:
        return logits.sum() * 0.0
    target = y / y.sum(1, keepdim=True)
    return -(target * F.log_softmax(logits.float(), dim=1)).sum(1).mean()


def sigmoid_loss(logits: torch.Tensor, label_sets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on the C foreground logits: summed over classes, averaged over N."""
    y = _check(logits, label_sets).to(torch.float32)
    if logits.numel() == 0:
        return logits.sum() * 0.0
    bce = F.binary_cross_entropy_with_logits(logits[:, 1:].float(), y[:, 1:], reduction="sum")
    return bce / len(logits)


def class_scores(logits: torch.Tensor, mode: str, rates: torch.Tensor | None = None) -> torch.Tensor:
    """Per-class scores ``[N, C]`` (background removed) for ``mode`` softmax | concurrent | sigmoid."""
    z = logits.float()
    if mode == "softmax":
        return F.softmax(z, dim=1)[:, 1:]
    if mode == "sigmoid":
        return torch.sigmoid(z[:, 1:])
    if mode == "concurrent":
        if rates is None:
            raise ValueError("concurrent scores need the concurrent rates")
        e = torch.exp(z - z.max(1, keepdim=True).values)
        w = 1.0 - rates.to(z)
        w.fill_diagonal_(0.0)
        den = e + e @ w.T                                               # e_i + Σ_{j≠i} (1 − r_ij) e_j
        return (e / den)[:, 1:]
    raise ValueError(f"unknown score mode {mode!r} (use {LOSSES})")


class LabelSetLoss(nn.Module):
    """The configured classification loss; holds the concurrent rates as a buffer (checkpointed, so an
    evaluation scores with the training set's rates)."""

    def __init__(self, kind: str, num_classes: int, rates: torch.Tensor | None = None):
        super().__init__()
        if kind not in LOSSES:
            raise ValueError(f"--loss {kind!r}: use one of {LOSSES}")
        self.kind = kind
        r = torch.zeros(num_classes + 1, num_classes + 1) if rates is None else rates.float()
        if r.shape != (num_classes + 1, num_classes + 1):
            raise ValueError(f"rates must be [{num_classes + 1}, {num_classes + 1}], got {tuple(r.shape)}")
        self.register_buffer("rates", r)

    def forward(self, logits: torch.Tensor, label_sets: torch.Tensor) -> torch.Tensor:
        if self.kind == "concurrent":
            return concurrent_softmax_loss(logits, label_sets, self.rates)
        if self.kind == "softmax":
            return softmax_loss(logits, label_sets)
        return sigmoid_loss(logits, label_sets)
