"""Face anti-spoofing metrics: CelebA-Spoof TPR@FPR and the CDCN APCER / BPCER / ACER / EER /
HTER / AUC.

Direction conventions (the two official codes use opposite ones):

* Input here, as in CelebA-Spoof: ``p_spoof`` = predicted probability of *spoof* (higher = more
  spoof-like) and ``is_spoof`` = index 43 of the CelebA-Spoof label vector (0 live, 1 spoof).
* CDCN (``ZitongYu/CDCN``, ``CVPR2020_paper_codes/utils.py``, the code the CelebA-Spoof maintainer
  points to for APCER/BPCER/ACER) uses label 1 = **live** and score = **liveness**. This module
  forms ``liveness = 1 - p_spoof`` (float64, as a score file of ``1 - p`` would hold) and
  ``label = 1 - is_spoof`` and applies CDCN's rules to those, so the chosen threshold is
  reported on both scales: ``threshold_liveness`` and ``threshold`` (= 1 - that, on p_spoof).

TPR@FPR (CelebA-Spoof ``intra_dataset_code/client.py``, current version): sort the live
``p_spoof`` scores descending; for each ``fpr``, ``threshold = live[max(1, int(fpr * n_live)) - 1]``;
TPR = fraction of spoof scores **strictly greater** than it (the client walks down the sorted
spoof scores and stops at the first one ``<= threshold``, revision e7ec10d; revision d0e54d1 stops
at ``< threshold`` and so also counts spoof scores tied with the threshold. The reference vectors
follow the strict ``<=`` version; a tie changes e.g. the hand-made case from 0.4 to 0.3).

CDCN operating point (``performances_SiWM_EER`` / ``performances_CASIA_Replay`` /
``performances_ZeroShot``), used when ``threshold`` is None:

* ``fpr, tpr, thr = sklearn.metrics.roc_curve(label, liveness, pos_label=1)`` with sklearn's
  defaults, reimplemented here without sklearn: descending mergesort of the scores, one point
  per distinct score, ``drop_intermediate=True`` (collinear points dropped, which changes the
  candidate thresholds), a leading (0, 0) point whose threshold is ``inf`` (sklearn >= 1.3; older
  versions used ``max + 1``, which yields the same counts).
* ``idx = argmin |tpr + fpr - 1|`` (first minimum); ``threshold_liveness = thr[idx]``;
  ``EER = fpr[idx]``; ``HTER = (fpr[idx] + (1 - tpr[idx])) / 2``; ``FAR = fpr[idx]``,
  ``FRR = 1 - tpr[idx]``.
* At that threshold: ``APCER = #{spoof: liveness > thr} / #spoof`` (spoof accepted),
  ``BPCER = #{live: liveness <= thr} / #live`` (live rejected), ``ACER = (APCER + BPCER) / 2``,
  ``ACC = 1 - errors / N``. Note ``<=`` here vs ``>=`` in the ROC: BPCER can differ from FRR by
  the live samples tied at the threshold itself.
* ``AUC = sklearn.metrics.auc(fpr, tpr)`` (trapezoid over the dropped-intermediate ROC; equals
  ``roc_auc_score`` up to rounding).

Given a ``threshold`` (chosen on validation data, applied to test data as it is):

* ``threshold_scale="p_spoof"`` (default): predict spoof iff ``p_spoof >= threshold``;
  ``APCER = #{spoof: p_spoof < thr} / #spoof``, ``BPCER = #{live: p_spoof >= thr} / #live``.
* ``threshold_scale="liveness"``: CDCN's rule on ``liveness = 1 - p_spoof`` (live iff
  ``liveness > thr``), i.e. CDCN's ``performances`` "test based on val_threshold" bit for bit;
  pass a validation run's ``threshold_liveness`` here.
* APCER / BPCER / ACER / ACC / ``HTER = (APCER + BPCER) / 2`` (``FAR`` = APCER, ``FRR`` = BPCER)
  are at the given threshold; EER, AUC and TPR@FPR do not depend on it and are still reported.

Which split sets the threshold in the CelebA-Spoof paper's table is not documented; callers
should report which one they used.
"""
from __future__ import annotations

import sys
from collections.abc import Iterable

import numpy as np

__all__ = ["spoof_metrics", "roc_curve", "auc", "tpr_at_fpr"]


def _to_numpy(x) -> np.ndarray:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        x = x.detach()
        if x.dtype in (torch.bfloat16, torch.float16):
            x = x.float()
        return x.cpu().numpy()
    return np.asarray(x)


def roc_curve(y_true, y_score, drop_intermediate: bool = True):
    """``sklearn.metrics.roc_curve(y_true, y_score, pos_label=1)`` (sklearn >= 1.3 semantics).

    ``y_true``: 1 = positive. Returns ``fpr, tpr, thresholds`` (float64), thresholds decreasing,
    the first one ``inf``. Both classes must be present.
    """
    y_true = np.asarray(y_true).reshape(-1) == 1
    y_score = np.asarray(y_score, dtype=np.float64).reshape(-1)
    order = np.argsort(y_score, kind="mergesort")[::-1]
    y_score = y_score[order]
    y_true = y_true[order]
    distinct = np.where(np.diff(y_score))[0]
    thr_idx = np.r_[distinct, y_true.size - 1]
    tps = np.cumsum(y_true * 1.0, dtype=np.float64)[thr_idx]
    fps = 1 + thr_idx - tps
    thresholds = y_score[thr_idx]
    if drop_intermediate and len(fps) > 2:
        keep = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    tps = np.r_[0, tps]
    fps = np.r_[0, fps]
    thresholds = np.r_[np.inf, thresholds]
    return fps / fps[-1], tps / tps[-1], thresholds


def auc(x, y) -> float:
    """``sklearn.metrics.auc``: trapezoidal area under a monotonic curve."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    dx = np.diff(x)
    direction = 1.0
    if np.any(dx < 0):
        if np.all(dx <= 0):
            direction = -1.0
        else:
            raise ValueError("x is neither increasing nor decreasing")
    return float(direction * np.add.reduce(dx * (y[1:] + y[:-1]) / 2.0))


def tpr_at_fpr(p_spoof, is_spoof, fprs: Iterable[float] = (1e-2, 5e-3, 1e-3)):
    """CelebA-Spoof client.py TPR@FPR. Returns ``({fpr: tpr}, {fpr: threshold_on_p_spoof})``."""
    p, s = _validate(p_spoof, is_spoof)
    live = np.sort(p[~s])[::-1]
    spoof = p[s]
    tprs, thrs = {}, {}
    for fpr in fprs:
        i_sample = max(1, int(fpr * live.size))
        if i_sample > live.size:
            raise ValueError(f"fpr={fpr} selects live score #{i_sample} of {live.size}")
        thr = float(live[i_sample - 1])
        thrs[fpr] = thr
        tprs[fpr] = int(np.count_nonzero(spoof > thr)) * 1.0 / spoof.size
    return tprs, thrs


def _validate(p_spoof, is_spoof):
    p = _to_numpy(p_spoof)
    s = _to_numpy(is_spoof)
    if p.ndim != 1 or s.ndim != 1:
        raise ValueError(f"p_spoof and is_spoof must be 1-D, got shapes {p.shape} and {s.shape}")
    if p.shape != s.shape:
        raise ValueError(f"p_spoof and is_spoof lengths differ: {p.shape[0]} vs {s.shape[0]}")
    p = p.astype(np.float64)
    if not np.all(np.isfinite(p)):
        raise ValueError("p_spoof contains NaN or inf")
    if s.dtype != np.bool_:
        if not np.all((s == 0) | (s == 1)):
            raise ValueError("is_spoof must be 0 (live) / 1 (spoof)")
        s = s == 1
    n_spoof = int(s.sum())
    if n_spoof == 0 or n_spoof == s.size:
        raise ValueError(f"need both live and spoof samples, got {s.size - n_spoof} live and "
                         f"{n_spoof} spoof")
    return p, s


def spoof_metrics(
    p_spoof,
    is_spoof,
    fprs: Iterable[float] = (1e-2, 5e-3, 1e-3),
    threshold: float | None = None,
    threshold_scale: str = "p_spoof",
) -> dict:
    """All CelebA-Spoof / CDCN anti-spoofing metrics (see the module docstring for definitions).

    Args:
        p_spoof: 1-D spoof probabilities (numpy / torch / list); higher = more spoof-like.
        is_spoof: 1-D labels, 0 = live, 1 = spoof (CelebA-Spoof label index 43).
        fprs: false-positive rates for TPR@FPR.
        threshold: None -> CDCN's EER operating point on these data; otherwise a fixed threshold
            (e.g. from validation) on the ``threshold_scale`` scale.
        threshold_scale: "p_spoof" (spoof iff p_spoof >= threshold) or "liveness" (CDCN's rule:
            live iff 1 - p_spoof > threshold).

    Returns:
        dict: ``tpr_at_fpr`` {fpr: tpr}, ``tpr_at_fpr_threshold`` {fpr: threshold on p_spoof},
        ``APCER``, ``BPCER``, ``ACER``, ``ACC``, ``EER``, ``HTER``, ``FAR``, ``FRR``, ``AUC``,
        ``threshold`` (p_spoof scale), ``threshold_liveness``, ``threshold_source``
        ("eer" or "given"), ``n_live``, ``n_spoof``.
    """
    if threshold_scale not in ("p_spoof", "liveness"):
        raise ValueError(f"threshold_scale must be 'p_spoof' or 'liveness', got {threshold_scale!r}")
    p, s = _validate(p_spoof, is_spoof)
    fprs = tuple(fprs)
    tprs, tpr_thrs = tpr_at_fpr(p, s, fprs)

    liveness = 1.0 - p
    live = ~s  # CDCN label 1
    num_real = float(live.sum())
    num_fake = float(s.sum())
    count = float(p.size)
    fpr, tpr, thr = roc_curve(live, liveness)
    area = auc(fpr, tpr)
    idx = int(np.argmin(np.abs(tpr + fpr - 1.0)))
    eer = float(fpr[idx])

    if threshold is None:
        thr_l = float(thr[idx])
        type1 = int(np.count_nonzero(live & (liveness <= thr_l)))  # live rejected
        type2 = int(np.count_nonzero(s & (liveness > thr_l)))  # spoof accepted
        far, frr = float(fpr[idx]), float(1 - tpr[idx])
        hter = float((fpr[idx] + (1 - tpr[idx])) / 2.0)
        thr_p = 1.0 - thr_l
        source = "eer"
    else:
        threshold = float(threshold)
        if threshold_scale == "liveness":
            thr_l, thr_p = threshold, 1.0 - threshold
            type1 = int(np.count_nonzero(live & (liveness <= thr_l)))
            type2 = int(np.count_nonzero(s & (liveness > thr_l)))
        else:
            thr_p, thr_l = threshold, 1.0 - threshold
            type1 = int(np.count_nonzero(live & (p >= thr_p)))
            type2 = int(np.count_nonzero(s & (p < thr_p)))
        source = "given"
    apcer = type2 / num_fake
    bpcer = type1 / num_real
    acer = (apcer + bpcer) / 2.0
    if threshold is not None:
        far, frr, hter = apcer, bpcer, acer
    return {
        "tpr_at_fpr": tprs,
        "tpr_at_fpr_threshold": tpr_thrs,
        "APCER": apcer,
        "BPCER": bpcer,
        "ACER": acer,
        "ACC": 1 - (type1 + type2) / count,
        "EER": eer,
        "HTER": hter,
        "FAR": far,
        "FRR": frr,
        "AUC": area,
        "threshold": thr_p,
        "threshold_liveness": thr_l,
        "threshold_source": source,
        "n_live": int(num_real),
        "n_spoof": int(num_fake),
    }
