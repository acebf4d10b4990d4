"""Semantic-segmentation confusion matrix, IoU and accuracies, Cityscapes protocol.

Protocol (cityscapesScripts ``cityscapesscripts/evaluation/evalPixelLevelSemanticLabeling.py``,
``evaluateImgLists`` / ``getIouScoreForLabel`` / ``getScoreAverage``, mcordts/cityscapesScripts
@ 0bcc4a7), written for label maps in train ids (``C`` classes, ``ignore_index`` = 255):

* Pixels whose **ground truth** is ``ignore_index`` are skipped entirely (cityscapesScripts counts
  them in the rows of ``ignoreInEval`` labels and then never reads those rows).
* A **prediction** outside ``[0, C)`` at a valid pixel (typically 255, i.e. "void" / labelId 0)
  is a false negative of the GT class and a false positive of nobody: it sits in the GT row but
  in no class column. It is kept in an extra column (``matrix_full[:, C]``), so every IoU
  denominator includes it. (The naive ``bincount(C * gt + pred)`` crashes or mis-assigns it.)
* ``IoU_c = TP / (TP + FP + FN)``; a class with no GT and no prediction (denominator 0) is NaN.
  ``mIoU`` = mean of the non-NaN IoUs (``getScoreAverage``). A class predicted but absent from
  the GT has IoU 0 and does count in the mean.
* Accuracies (mmseg ``IoUMetric`` definitions, same confusion matrix): ``acc_c = TP / #GT_c``
  (NaN when the class has no GT pixel; GT pixels predicted as void count in ``#GT_c``),
  ``macc`` = nanmean of ``acc``, ``aacc`` = overall pixel accuracy = sum(TP) / #valid GT pixels.
* Optional category IoU (``compute(categories=...)``, e.g. ``CITYSCAPES_CATEGORIES``) follows
  ``getIouScoreForCategory``: a category is the union of its classes.

Counting: numpy inputs go through ``np.bincount``; torch tensors stay on their device and go
through ``torch.bincount`` (no host sync except the validity check of GT values), so ``update``
can be called inside a GPU evaluation loop. ``all_reduce()`` sums the matrix over ranks when
``torch.distributed`` is initialised (no-op otherwise); ``merge(other)`` adds another matrix.
Counts are int64 (exact); ratios are float64 and match cityscapesScripts to ~1e-16.
"""
from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["ConfusionMatrix", "CITYSCAPES_CATEGORIES", "CITYSCAPES_CLASSES"]

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)

# Cityscapes categories in train ids (cityscapesscripts/helpers/labels.py, 'void' has no
# evaluated class).
CITYSCAPES_CATEGORIES: dict[str, tuple] = {
    "flat": (0, 1),
    "construction": (2, 3, 4),
    "object": (5, 6, 7),
    "nature": (8, 9),
    "sky": (10,),
    "human": (11, 12),
    "vehicle": (13, 14, 15, 16, 17, 18),
}


def _is_tensor(x) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _nanmean(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(np.mean(x)) if x.size else float("nan")


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


class ConfusionMatrix:
    """Accumulates a ``[C, C]`` confusion matrix (rows = GT, cols = prediction) plus a column of
    valid GT pixels whose prediction lies outside ``[0, C)``.

    Example::

        cm = ConfusionMatrix(19)
        for pred, gt in loader:           # int tensors [B, H, W] (any device) or numpy arrays
            cm.update(pred, gt)
        cm.all_reduce()                   # under torch.distributed; no-op otherwise
        res = cm.compute()                # res["miou"], res["iou"], res["aacc"], ...
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255):
        num_classes = int(num_classes)
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if ignore_index is not None and 0 <= int(ignore_index) < num_classes:
            raise ValueError(f"ignore_index {ignore_index} collides with a class id "
                             f"in [0, {num_classes})")
        self.num_classes = num_classes
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self._np = np.zeros((num_classes, num_classes + 1), dtype=np.int64)
        self._torch = None  # int64 tensor [C, C+1] on the device of the torch updates

    # ------------------------------------------------------------------ accumulation
    def reset(self) -> None:
        self._np[...] = 0
        self._torch = None

    def update(self, pred, target) -> ConfusionMatrix:
        """Add a batch of integer label maps of identical shape (any shape, e.g. [B, H, W])."""
        if _is_tensor(pred) or _is_tensor(target):
            self._update_torch(pred, target)
        else:
            self._update_numpy(np.asarray(pred), np.asarray(target))
        return self

    def _check(self, pred, target, is_float) -> None:
        if tuple(pred.shape) != tuple(target.shape):
            raise ValueError(f"pred and target shapes differ: {tuple(pred.shape)} vs "
                             f"{tuple(target.shape)} (pass label maps, not logits)")
        if is_float(pred) or is_float(target):
            raise TypeError("pred and target must be integer label maps, got "
                            f"{pred.dtype} / {target.dtype} (argmax the logits first)")

    def _bad_target(self, n_bad, example) -> ValueError:
        return ValueError(f"{n_bad} target pixels outside [0, {self.num_classes}) and not "
                          f"ignore_index={self.ignore_index} (e.g. {example})")

    def _update_numpy(self, pred: np.ndarray, target: np.ndarray) -> None:
        self._check(pred, target, lambda a: not (np.issubdtype(a.dtype, np.integer)
                                                 or a.dtype == np.bool_))
        c = self.num_classes
        t = target.reshape(-1).astype(np.int64)
        p = pred.reshape(-1).astype(np.int64)
        if self.ignore_index is not None:
            keep = t != self.ignore_index
            t, p = t[keep], p[keep]
        bad = (t < 0) | (t >= c)
        if bad.any():
            raise self._bad_target(int(bad.sum()), int(t[bad][0]))
        p = np.where((p < 0) | (p >= c), c, p)
        counts = np.bincount(t * (c + 1) + p, minlength=c * (c + 1))
        self._np += counts.reshape(c, c + 1)

    def _update_torch(self, pred, target) -> None:
        import torch

        pred = torch.as_tensor(pred)
        target = torch.as_tensor(target, device=pred.device)
        self._check(pred, target, lambda a: a.is_floating_point() or a.is_complex())
        c = self.num_classes
        t = target.reshape(-1).long()
        p = pred.reshape(-1).to(device=t.device).long()
        if self.ignore_index is not None:
            keep = t != self.ignore_index
            t, p = t[keep], p[keep]
        bad = (t < 0) | (t >= c)
        n_bad = int(bad.sum())  # the one host sync: refuse silent garbage
        if n_bad:
            raise self._bad_target(n_bad, int(t[bad][0]))
        p = torch.where((p < 0) | (p >= c), torch.full_like(p, c), p)
        counts = torch.bincount(t * (c + 1) + p, minlength=c * (c + 1)).reshape(c, c + 1)
        if self._torch is None:
            self._torch = counts.to(torch.int64)
        else:
            self._torch += counts.to(self._torch.device)

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add the counts of another matrix (same ``num_classes``) into this one."""
        if not isinstance(other, ConfusionMatrix):
            raise TypeError(f"can only merge a ConfusionMatrix, got {type(other).__name__}")
        if other.num_classes != self.num_classes:
            raise ValueError(f"num_classes differ: {self.num_classes} vs {other.num_classes}")
        self._np += other.matrix_full
        return self

    def all_reduce(self) -> ConfusionMatrix:
        """Sum the counts over all ranks (torch.distributed SUM); no-op when not initialised."""
        torch = sys.modules.get("torch")
        if torch is None:
            return self
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self
        if dist.get_backend() == "nccl":
            device = torch.device("cuda", torch.cuda.current_device())
        else:
            device = torch.device("cpu")
        total = torch.as_tensor(self._np, device=device)
        if self._torch is not None:
            total = total + self._torch.to(device)
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        self._np = total.cpu().numpy().astype(np.int64, copy=True)
        self._torch = None
        return self

    # ------------------------------------------------------------------ results
    @property
    def matrix_full(self) -> np.ndarray:
        """int64 ``[C, C+1]``: the confusion matrix plus, last column, valid GT pixels whose
        prediction was outside ``[0, C)``."""
        m = self._np.copy()
        if self._torch is not None:
            m += self._torch.cpu().numpy()
        return m

    @property
    def matrix(self) -> np.ndarray:
        """int64 ``[C, C]`` confusion matrix, rows = GT class, columns = predicted class."""
        return self.matrix_full[:, : self.num_classes]

    def compute(self, categories: Mapping[str, Sequence[int]] | None = None) -> dict:
        """Per-class and mean scores.

        Returns a dict with ``iou``, ``acc`` (float64 arrays [C], NaN where undefined),
        ``miou``, ``macc``, ``aacc`` (floats; NaN if nothing is defined), ``matrix`` ([C, C]),
        ``pred_outside`` ([C], valid GT pixels predicted outside [0, C)), ``num_valid_pixels``
        and ``num_classes_in_mean``. With ``categories`` (name -> class ids), also
        ``category_iou`` (dict) and ``category_miou``.
        """
        c = self.num_classes
        full = self.matrix_full
        m = full[:, :c]
        tp = np.diag(m).astype(np.int64)
        gt = full.sum(axis=1)  # includes predictions outside [0, C)
        fp = m.sum(axis=0) - tp
        fn = gt - tp
        iou = _safe_div(tp, tp + fp + fn)
        acc = _safe_div(tp, gt)
        n_valid = int(gt.sum())
        out = {
            "iou": iou,
            "miou": _nanmean(iou),
            "acc": acc,
            "macc": _nanmean(acc),
            "aacc": float(tp.sum() / n_valid) if n_valid else float("nan"),
            "matrix": m,
            "pred_outside": full[:, c].copy(),
            "num_valid_pixels": n_valid,
            "num_classes_in_mean": int((~np.isnan(iou)).sum()),
        }
        if categories is not None:
            cat_iou = {}
            for name, ids in categories.items():
                ids = np.asarray(sorted(set(int(i) for i in ids)), dtype=np.int64)
                if ids.size == 0 or ids.min() < 0 or ids.max() >= c:
                    raise ValueError(f"category {name!r}: class ids must lie in [0, {c})")
                others = np.setdiff1d(np.arange(c), ids)
                ctp = int(m[np.ix_(ids, ids)].sum())
                cfn = int(full[ids].sum()) - ctp
                cfp = int(m[np.ix_(others, ids)].sum())
                den = ctp + cfp + cfn
                cat_iou[name] = float(ctp) / den if den else float("nan")
            out["category_iou"] = cat_iou
            out["category_miou"] = _nanmean(np.array(list(cat_iou.values()), dtype=np.float64))
        return out

    def __repr__(self) -> str:
        return (f"ConfusionMatrix(num_classes={self.num_classes}, ignore_index={self.ignore_index},"
                f" pixels={int(self.matrix_full.sum())})")
