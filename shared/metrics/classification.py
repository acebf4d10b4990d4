"""Classification metrics for evaluation loops: top-k accuracy, a running-average meter and multi-label mAP.

``accuracy`` (source: torchvision ``references/classification/utils.py::accuracy``, same semantics):

* top-k accuracy in **percent** = 100 * (#samples whose target is among the k highest scores) / N,
  returned as a list of Python floats, one per k in ``topk``.
* ``target`` may be class indices ``[N]`` or a 2-D ``[N, C]`` tensor (one-hot, or mixup/cutmix soft labels),
  which is reduced with ``argmax`` exactly as torchvision does (``target.max(dim=1)[1]``).
* Quirks and choices:
  - **ties**: torchvision uses ``output.topk(maxk)``, whose order among equal scores is implementation-
    defined (device and kernel dependent). Here the ranking is a *stable* descending sort, so equal scores
    are ordered by class index (lower index first). Results equal torchvision's whenever no tie straddles
    the k-th position.
  - **k larger than the number of classes**: torchvision raises inside ``topk``. Here ``k`` is clamped to
    ``C``: top-k accuracy with ``k >= C`` is 100 % by definition (every class is in the top k), so the
    clamp is exact, and a 3-class problem can keep the default ``topk=(1, 5)``.
  - the percentage is computed in float64 (torchvision: float32 tensor ``correct * (100 / N)``), so
    e.g. 1/3 gives 33.333333333333336 instead of 33.33333206.
  - an empty batch raises ``ValueError`` (torchvision divides by zero).

Meters (``SmoothedValue``, ``MetricLogger``) live in ``shared.log``.

``mean_average_precision`` (multi-label, e.g. video / attribute classification; source: scikit-learn
``average_precision_score``, which the Charades / AVA-style classification protocols use):

* per class, AP = sum_n (R_n - R_{n-1}) * P_n over the *distinct* score thresholds (equal scores form one
  operating point), **not interpolated**, R_0 = 0; this is sklearn's definition, not the VOC envelope.
* **classes without any positive label get AP = NaN and are excluded from the mean** (sklearn warns,
  gives them a degenerate value and averages them in with ``average='macro'``; the Charades evaluator
  excludes them, as done here). If no class has a positive, mAP is NaN.
* scores may be any real numbers (logits or probabilities); labels are multi-hot {0, 1} (bool accepted).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import numpy as np
import torch

__all__ = ["accuracy", "mean_average_precision", "average_precision"]

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence]


def accuracy(output: ArrayLike, target: ArrayLike, topk: Sequence[int] = (1, 5)) -> list[float]:
    """Top-k accuracies in percent for scores ``output [N, C]`` and ``target`` ([N] indices or [N, C]).

    Returns ``[acc@k for k in topk]`` as Python floats. See the module docstring for ties (stable, lower
    class index first) and ``k > C`` (clamped; exact).
    """
    output = torch.as_tensor(output).detach()
    target = torch.as_tensor(target).detach()
    if output.ndim != 2:
        raise ValueError(f"output must be [N, C], got shape {tuple(output.shape)}")
    if target.ndim == 2:
        target = target.max(dim=1)[1]
    if target.ndim != 1 or target.shape[0] != output.shape[0]:
        raise ValueError(f"target must be [N] or [N, C] with N={output.shape[0]}, got {tuple(target.shape)}")
    n, c = output.shape
    if n == 0:
        raise ValueError("accuracy of an empty batch is undefined")
    ks = [int(k) for k in topk]
    if any(k < 1 for k in ks):
        raise ValueError(f"every k must be >= 1, got {ks}")
    target = target.to(output.device).long()
    if bool(((target < 0) | (target >= c)).any()):
        raise ValueError(f"target values must lie in [0, {c})")
    # rank of the target = number of classes placed before it by a stable descending sort
    order = torch.sort(output, dim=1, descending=True, stable=True).indices
    rank = (order == target[:, None]).int().argmax(dim=1)  # 0-based position of the target class
    out = []
    for k in ks:
        correct = int((rank < min(k, c)).sum().item())
        out.append(100.0 * correct / n)
    return out


def _to_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def average_precision(scores: ArrayLike, labels: ArrayLike) -> float:
    """sklearn-style (non-interpolated, ties grouped) AP of one binary problem; NaN if no positive."""
    s = _to_numpy(scores).astype(np.float64).reshape(-1, 1)
    y = _to_numpy(labels).reshape(-1, 1)
    return float(mean_average_precision(s, y)[1][0])


def mean_average_precision(scores: ArrayLike, labels: ArrayLike) -> tuple[float, np.ndarray]:
    """Multi-label mAP: ``scores [N, C]`` (real), ``labels [N, C]`` multi-hot.

    Returns ``(mAP, ap)`` with ``ap [C]`` float64 per-class AP (NaN for classes with no positive) and
    ``mAP = nanmean(ap)`` (NaN if every class lacks positives). See the module docstring for the definition.
    """
    s = _to_numpy(scores).astype(np.float64)
    y = _to_numpy(labels)
    if s.ndim == 1:
        s = s[:, None]
    if y.ndim == 1:
        y = y[:, None]
    if s.shape != y.shape or s.ndim != 2:
        raise ValueError(f"scores and labels must both be [N, C]; got {s.shape} and {y.shape}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    yb = y.astype(np.float64)
    if not np.all((yb == 0) | (yb == 1)):
        raise ValueError("labels must be binary (0/1)")
    n, c = s.shape
    ap = np.full(c, np.nan)
    if n == 0:
        return float("nan"), ap
    order = np.argsort(-s, axis=0, kind="stable")
    ss = np.take_along_axis(s, order, axis=0)
    yy = np.take_along_axis(yb, order, axis=0)
    tp = np.cumsum(yy, axis=0)
    fp = np.cumsum(1.0 - yy, axis=0)
    precision = tp / (tp + fp)
    # last position of each run of equal scores = one operating point (threshold)
    end = np.ones_like(ss, dtype=bool)
    end[:-1] = ss[1:] != ss[:-1]
    # true positives at the previous operating point (tp is non-decreasing down each column)
    tp_end = np.where(end, tp, 0.0)
    prev = np.zeros_like(tp)
    prev[1:] = np.maximum.accumulate(tp_end, axis=0)[:-1]
    n_pos = tp[-1]
    gain = np.where(end, tp - prev, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = (gain * precision).sum(axis=0) / n_pos
    valid = n_pos > 0
    ap[valid] = per_class[valid]
    m = float(np.mean(ap[valid])) if valid.any() else float("nan")
    return m, ap
