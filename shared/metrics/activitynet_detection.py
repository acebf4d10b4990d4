"""ActivityNet temporal action detection evaluation (interpolated mAP per class and tIoU).

A vectorised reimplementation of the official ``Evaluation/eval_detection.py`` (``ANETdetection``,
activitynet/ActivityNet commit 82304fa9, ``check_status=False``). Reading, tIoU, the official
dtype and tie rules, and the choices where the official code crashes are shared with the proposal
protocol and documented in ``shared.metrics.activitynet``; tested to 1e-9 against numbers printed
by the official code (``shared/tests/test_metrics_activitynet.py``).

Detection (``evaluate_detections``)
  * Classes are the labels of the ``subset`` ground truth in order of first appearance (not the
    taxonomy); ``result["classes"]`` lists them and indexes the columns of ``result["ap"]``.
  * Per class, predictions are sorted by score descending (``np.argsort(score)[::-1]`` on the
    class's scores in file order: ties are broken exactly as the official code breaks them).
    Going down that list, a prediction is a true positive at threshold t when its video has a
    not-yet-matched ground-truth segment of the class with tIoU >= t; it takes the one with
    the highest tIoU (ties among ground-truth segments: the order of
    ``np.argsort(tiou)[::-1]``, as official; a NaN tIoU, from two zero-length segments at the
    same instant, sorts first and matches, as official). Everything else is a false positive,
    including predictions on videos outside the subset (they are **not** filtered out).
  * AP is the VOC-2011 interpolated AP: precision made monotone from the right, summed over
    the recall steps, recall = TP / n_gt_of_class. A class without predictions gets AP 0 (the
    official code prints a warning). ``mAP_per_tiou = ap.mean(1)``, ``mAP = mAP_per_tiou.mean()``.
"""
from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable

import numpy as np

from shared.formats.activitynet.common import PathOrDict, describe
from shared.metrics.activitynet import (
    DEFAULT_TIOU_THRESHOLDS,
    _parse_ground_truth,
    _parse_submission,
    parse_tiou_thresholds,
)

__all__ = ["evaluate_detections"]


def _interpolated_ap(prec: np.ndarray, rec: np.ndarray) -> np.ndarray:
    """VOC-2011 interpolated AP of each row of ``prec``/``rec`` [T, n]."""
    t = prec.shape[0]
    mprec = np.hstack([np.zeros((t, 1)), prec, np.zeros((t, 1))])
    mrec = np.hstack([np.zeros((t, 1)), rec, np.ones((t, 1))])
    mprec = np.maximum.accumulate(mprec[:, ::-1], axis=1)[:, ::-1]
    d = mrec[:, 1:] - mrec[:, :-1]
    return np.where(d != 0, d * mprec[:, 1:], 0.0).sum(axis=1)


def _match_exact_row(tiou_row, locked_g, thr, tp_col):
    """The official greedy rule for one prediction (used for rows with ties or NaN)."""
    order = np.argsort(tiou_row)[::-1]
    for t in range(thr.size):
        for j in order:
            if tiou_row[j] < thr[t]:
                break
            if locked_g[j, t]:
                continue
            locked_g[j, t] = True
            tp_col[t] = True
            break


def _greedy_match(pred_start, pred_end, pred_group, gt_start_pad, gt_end_pad, gt_n,
                  thr) -> np.ndarray:
    """True-positive flags [T, n_pred] for predictions already in score order.

    ``pred_group`` is the (class, video) group of each prediction (-1: no ground truth of its
    class in its video). The greedy rule is sequential within a group only, so the k-th
    prediction of every group is processed in one vectorised step.
    """
    n_pred = pred_start.size
    n_thr = thr.size
    tp = np.zeros((n_thr, n_pred), dtype=bool)
    m_pos = np.flatnonzero(pred_group >= 0)
    if m_pos.size == 0:
        return tp
    n_groups, g_max = gt_start_pad.shape
    gid = pred_group[m_pos]
    valid = np.arange(g_max)[None, :] < gt_n[:, None]                 # [G, Gmax]
    gt_len_pad = gt_end_pad - gt_start_pad

    def tiou_rows(a, g, gm):
        ps = pred_start[a][:, None]
        pe = pred_end[a][:, None]
        ge, gs = gt_end_pad[g, :gm], gt_start_pad[g, :gm]
        inter = np.clip(np.minimum(pe, ge) - np.maximum(ps, gs), 0, None)
        with np.errstate(divide="ignore", invalid="ignore"):
            return inter / (gt_len_pad[g, :gm] + (pe - ps) - inter)   # [A, gm]

    # A prediction below the lowest threshold with every GT of its group (and no NaN tIoU) is
    # a false positive at every threshold and locks nothing: leave it out of the greedy loop.
    thr_min = thr.min()
    keep = np.zeros(m_pos.size, dtype=bool)
    chunk = max(1, (1 << 20) // g_max)
    for lo in range(0, m_pos.size, chunk):
        a, g = m_pos[lo:lo + chunk], gid[lo:lo + chunk]
        tiou = tiou_rows(a, g, g_max)
        keep[lo:lo + chunk] = (valid[g] & ((tiou >= thr_min) | np.isnan(tiou))).any(axis=1)
    m_pos, gid = m_pos[keep], gid[keep]
    if m_pos.size == 0:
        return tp
    order = np.argsort(gid, kind="stable")
    gid = gid[order]
    m_pos = m_pos[order]
    counts = np.bincount(gid, minlength=n_groups)
    k = np.arange(gid.size) - np.repeat(np.cumsum(counts) - counts, counts)
    step_order = np.argsort(k, kind="stable")
    step_bounds = np.concatenate([[0], np.cumsum(np.bincount(k))])
    locked = np.zeros((n_groups, g_max, n_thr), dtype=bool)
    thr3 = thr[None, None, :]
    for s in range(step_bounds.size - 1):
        sel = step_order[step_bounds[s]:step_bounds[s + 1]]
        a = m_pos[sel]
        g = gid[sel]
        gm = int(gt_n[g].max())                  # pad only to the largest active group
        tiou = tiou_rows(a, g, gm)
        vg = valid[g, :gm]
        nan_rows = (np.isnan(tiou) & vg).any(axis=1)
        tiou = np.where(vg, tiou, -np.inf)
        lk = locked[g, :gm]                                           # [A, gm, T]
        elig = (tiou[:, :, None] >= thr3) & ~lk
        cand = np.where(elig, tiou[:, :, None], -np.inf)
        best = cand.argmax(axis=1)                                    # [A, T]
        has = elig.any(axis=1)
        if gm > 1:
            bestval = np.take_along_axis(cand, best[:, None, :], axis=1)
            ties = ((cand == bestval) & elig).sum(axis=1) > 1
            irregular = nan_rows | (ties & has).any(axis=1)
        else:
            irregular = nan_rows
        ok = has & ~irregular[:, None]
        rr, tt = np.nonzero(ok)
        locked[g[rr], best[rr, tt], tt] = True
        tp[tt, a[rr]] = True
        for r in np.flatnonzero(irregular):
            gg = g[r]
            n = gt_n[gg]
            col = np.zeros(n_thr, dtype=bool)
            row = tiou[r, :n].copy()
            _match_exact_row(row, locked[gg], thr, col)
            tp[:, a[r]] = col
    return tp


def evaluate_detections(
    ground_truth: PathOrDict,
    detections: PathOrDict,
    subset: str = "validation",
    tiou_thresholds=DEFAULT_TIOU_THRESHOLDS,
    unknown_labels: str = "warn",
    exclude_videos: Iterable[str] | None = None,
) -> dict:
    """Official ActivityNet detection evaluation (interpolated AP per class and tIoU).

    Returns a dict with ``"mAP"`` (average over thresholds of the mean over classes),
    ``"mAP_per_tiou"`` [n_tiou], ``"ap"`` [n_tiou, n_classes], ``"classes"`` (column order),
    ``"tiou_thresholds"``, ``"n_gt"``, ``"n_predictions"`` (evaluated),
    ``"classes_without_predictions"``, ``"unknown_labels"`` (skipped labels).
    ``unknown_labels``: ``"warn"`` (skip those predictions with a warning) or ``"error"``.
    """
    if unknown_labels not in ("warn", "error"):
        raise ValueError("unknown_labels must be 'warn' or 'error'")
    thr = parse_tiou_thresholds(tiou_thresholds)
    exclude = frozenset(exclude_videos or ())
    gt = _parse_ground_truth(ground_truth, subset, exclude)
    sub = _parse_submission(detections, with_label=True, exclude=exclude)
    n_gt = int(gt.video.size)
    if n_gt == 0:
        raise ValueError(f"ground-truth {describe(ground_truth)}: no annotated video in subset "
                         f"{subset!r}")
    n_classes = len(gt.classes)
    n_videos = len(gt.video_ids)
    class_index = {c: i for i, c in enumerate(gt.classes)}

    # Labels -> class indices; unknown labels are dropped (or raise).
    lab = np.fromiter(map(class_index.get, sub.labels, itertools.repeat(-1)),
                      dtype=np.int64, count=len(sub.labels))
    unknown: dict = {}
    for i in np.flatnonzero(lab < 0).tolist():
        lbl = sub.labels[i]
        unknown[lbl] = unknown.get(lbl, 0) + 1
    if unknown:
        desc = ", ".join(f"{k!r} ({v})" for k, v in sorted(unknown.items(), key=str))
        msg = (f"detections {describe(detections)}: {sum(unknown.values())} prediction(s) with "
               f"label(s) absent from the {subset!r} ground truth: {desc}")
        if unknown_labels == "error":
            raise ValueError(msg)
        warnings.warn(msg + "; they are skipped (the official code raises KeyError)",
                      stacklevel=2)

    pred_video = np.repeat(
        np.asarray([gt.video_index.get(v, -1) for v in sub.video_names], dtype=np.int64),
        sub.counts,
    )
    keep = lab >= 0
    idx_all = np.flatnonzero(keep)
    lab_k = lab[idx_all]

    # Per class, score order as official: np.argsort(scores in file order)[::-1].
    by_label = idx_all[np.argsort(lab_k, kind="stable")]
    n_per_class = np.bincount(lab_k, minlength=n_classes)
    class_bounds = np.concatenate([[0], np.cumsum(n_per_class)])
    chunks = []
    for c in range(n_classes):
        idx_c = by_label[class_bounds[c]:class_bounds[c + 1]]
        chunks.append(idx_c[np.argsort(sub.score[idx_c])[::-1]])
    s_idx = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
    s_start = sub.start[s_idx]
    s_end = sub.end[s_idx]
    s_video = pred_video[s_idx]
    s_label = np.repeat(np.arange(n_classes), n_per_class)

    # (class, video) groups of the ground truth, instances in file order within a group.
    gt_key = gt.label * n_videos + gt.video
    gt_order = np.argsort(gt_key, kind="stable")
    keys_sorted = gt_key[gt_order]
    uniq_keys, grp_first, gt_n = np.unique(keys_sorted, return_index=True, return_counts=True)
    n_groups = uniq_keys.size
    g_max = int(gt_n.max())
    slot = np.arange(n_gt) - np.repeat(grp_first, gt_n)
    grp_of_sorted = np.repeat(np.arange(n_groups), gt_n)
    gt_start_pad = np.zeros((n_groups, g_max))
    gt_end_pad = np.zeros((n_groups, g_max))
    gt_start_pad[grp_of_sorted, slot] = gt.start[gt_order]
    gt_end_pad[grp_of_sorted, slot] = gt.end[gt_order]

    pred_key = s_label * n_videos + s_video
    pos = np.searchsorted(uniq_keys, pred_key)
    pos_c = np.minimum(pos, max(n_groups - 1, 0))
    pred_group = np.where((s_video >= 0) & (uniq_keys[pos_c] == pred_key), pos_c, -1)

    tp = _greedy_match(s_start, s_end, pred_group, gt_start_pad, gt_end_pad, gt_n, thr)

    n_thr = thr.size
    npos = np.bincount(gt.label, minlength=n_classes).astype(np.float64)
    ap = np.zeros((n_thr, n_classes))
    for c in range(n_classes):
        lo, hi = class_bounds[c], class_bounds[c + 1]
        if hi == lo:
            continue
        tpc = tp[:, lo:hi]
        tp_cum = np.cumsum(tpc, axis=1).astype(np.float64)
        fp_cum = np.cumsum(~tpc, axis=1).astype(np.float64)
        rec = tp_cum / npos[c]
        prec = tp_cum / (tp_cum + fp_cum)
        ap[:, c] = _interpolated_ap(prec, rec)
    map_per_tiou = ap.mean(axis=1)
    return {
        "mAP": float(map_per_tiou.mean()),
        "mAP_per_tiou": map_per_tiou,
        "ap": ap,
        "classes": list(gt.classes),
        "tiou_thresholds": thr,
        "n_gt": n_gt,
        "n_predictions": int(s_idx.size),
        "classes_without_predictions": [gt.classes[c] for c in range(n_classes)
                                        if n_per_class[c] == 0],
        "unknown_labels": dict(unknown),
    }
