"""Object-detection evaluation: box IoU, COCO greedy matching, COCO 101-point AP, all-point AP and a
vectorised re-implementation of pycocotools ``COCOeval`` for ``iouType='bbox'``.

Source: pycocotools 2.0.x ``cocoeval.py`` (``COCOeval.evaluate / evaluateImg / accumulate / summarize``),
``coco.py`` (``loadRes``, ``getAnnIds``) and ``common/maskApi.c::bbIou``. ``coco_evaluate`` agrees with
``COCOeval`` to 1e-9 (in practice bit for bit) on the reference vectors, and is tested against a live
``COCOeval`` run on randomised cases built to provoke ties, crowds and area-boundary effects.
(Over the ~500-line aim on purpose: a tenth of it is this description of the protocol's quirks, and the
building blocks below are the ones ``coco_evaluate`` uses; splitting them would part each quirk from its code.)

Building blocks (reused by the LVIS and Open Images evaluators):

* ``box_iou(a, b, fmt, iscrowd)``: ``[N, M]`` IoU in float64, the arithmetic of ``bbIou`` exactly: for
  ``xywh`` the right edge is ``x + w`` and the area ``w * h``; intersection ``i = w_i * h_i`` only when both
  overlaps are ``> 0`` (else IoU 0); union ``u = area(a) + area(b) - i``, or ``u = area(a)`` when column
  ``j`` is a crowd region (``iscrowd[j]``): IoU with a crowd = the fraction of the detection covered by it.
  The crowd rule makes IoU asymmetric: rows are detections, columns ground truth.
* ``match_greedy`` / ``match_greedy_grouped``: COCO's greedy matching (``evaluateImg``). Detections are
  visited by descending score (``np.argsort(-score, kind='mergesort')``, i.e. ties keep input order). Each
  takes, among the GT not yet matched at this IoU threshold (crowd GT may be matched any number of
  times) with ``IoU >= min(t, 1 - 1e-10)``, the **non-ignored** GT of highest IoU; only if there is none,
  the ignored GT of highest IoU. Among equal IoUs the *last* GT (in input order within its ignore class)
  wins, because ``COCOeval`` replaces the running best on ``>=``. A detection matched to an ignored GT is
  ignored. (The "ignored GT last" sort of ``evaluateImg`` is stable, so this two-tier rule is the same
  thing without re-sorting.)
* ``ap_coco_101``: per threshold, ``rc = tp_cum / n_gt``, ``pr = tp_cum / (fp_cum + tp_cum + eps)``
  (eps = ``np.spacing(1)``), the precision envelope ``pr[i] = max(pr[i:])``, then the precision at the first
  detection with ``rc >= r`` (``np.searchsorted(rc, recThrs, 'left')``) for the 101 recall thresholds
  ``np.linspace(0, 1, 101)``; thresholds beyond the maximal recall get precision 0. AP = mean of the 101.
* ``ap_all_points``: VOC2010+/Open Images AP: ``recall = [0, rec, 1]``, ``precision = [0, prec, 0]``, the
  envelope, and the area summed where recall changes (TF Object Detection API ``compute_average_precision``).

COCOeval semantics reproduced by ``coco_evaluate`` (default parameters: IoU .50:.05:.95, 101 recall points,
maxDets 1/10/100, area ranges all [0, 1e10], small [0, 32^2], medium [32^2, 96^2], large [96^2, 1e10]):

* images = every ``gt['images']`` id (sorted), categories = every ``gt['categories']`` id (sorted); GT
  annotations on other images / categories are dropped, and so are detections of unknown categories.
  A detection on an image absent from ``gt['images']`` raises (pycocotools asserts in ``loadRes``).
* detection area = ``w * h`` of its box; GT area = the annotation's ``area`` field (a polygon area in
  real COCO data, not the box area). Areas are compared with inclusive bounds on both ends: an object of
  area exactly 32^2 is both small and medium.
* GT ``ignore`` = ``iscrowd`` (a GT ``ignore`` field in the JSON is overwritten, as in pycocotools), plus,
  per area range, GT outside the range. Crowd GT are ignored and can absorb many detections.
* per image and category, detections are sorted by score (stable) and cut to the top ``maxDets[-1]``
  *before* matching; for the smaller maxDets the per-image-category lists are cut to the top maxDet.
* unmatched detections outside the area range are ignored; matched ones count in every range.
* accumulation per category / area / maxDet: detections of all images, concatenated in ascending image-id
  order, sorted by score with a stable sort; ignored detections count neither as TP nor FP; categories
  with no non-ignored GT in a range get precision/recall -1 and are left out of the means.
* ``stats`` are pycocotools' 12 numbers (means over entries ``> -1``; -1 when there are none);
  ``per_category_AP`` is the mean precision over IoU thresholds and recall points for area 'all' and
  maxDets 100 (NaN for a category without GT).
* quirk kept: a GT with annotation ``id == 0`` cannot be "matched" in the accumulation (pycocotools stores
  the matched GT id and tests it for truthiness), so a detection matched to it counts as a false positive
  (or is ignored if that GT is ignored) while still consuming the GT. COCO ids start at 1.

Differences, on purpose: empty detection lists are evaluated (AP 0; pycocotools crashes in ``loadRes``);
a GT ``iscrowd`` missing defaults to 0 and a missing ``area`` to ``w * h`` (pycocotools raises);
duplicate GT annotation ids raise ``ValueError`` (pycocotools silently evaluates the last one twice).
Only ``iou_type='bbox'`` is implemented; segm/keypoints raise ``NotImplementedError``.
"""
from __future__ import annotations

import gzip
import json
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "COCO_IOU_THRS", "COCO_REC_THRS", "COCO_MAX_DETS", "COCO_AREA_RNG", "COCO_AREA_LBL", "COCO_STAT_NAMES",
    "box_iou", "box_iou_coco", "pairwise_iou_grouped", "match_greedy", "match_greedy_grouped", "GreedyMatch",
    "ap_coco_101", "CocoPR", "ap_all_points", "coco_evaluate", "load_json",
]

# np.linspace exactly as pycocotools Params.setDetParams builds them (np.arange drifts).
COCO_IOU_THRS = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
COCO_REC_THRS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
COCO_MAX_DETS = (1, 10, 100)
COCO_AREA_RNG = ((0 ** 2, 1e5 ** 2), (0 ** 2, 32 ** 2), (32 ** 2, 96 ** 2), (96 ** 2, 1e5 ** 2))
COCO_AREA_LBL = ("all", "small", "medium", "large")
COCO_STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


# ----------------------------------------------------------------------------------------------- IoU
def _edges(boxes: np.ndarray, fmt: str) -> tuple[np.ndarray, ...]:
    """(x1, y1, x2, y2, area) with bbIou's arithmetic for xywh (x2 = x + w, area = w * h)."""
    if fmt == "xywh":
        x, y, w, h = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
        return x, y, w + x, h + y, w * h
    if fmt == "xyxy":
        x1, y1, x2, y2 = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
        return x1, y1, x2, y2, (x2 - x1) * (y2 - y1)
    raise ValueError(f"fmt must be 'xyxy' or 'xywh', got {fmt!r}")


def _iou_from_edges(d, g, crowd) -> np.ndarray:
    dx1, dy1, dx2, dy2, da = d
    gx1, gy1, gx2, gy2, ga = g
    w = np.minimum(dx2, gx2) - np.maximum(dx1, gx1)
    h = np.minimum(dy2, gy2) - np.maximum(dy1, gy1)
    pos = (w > 0) & (h > 0)
    inter = np.where(pos, w * h, 0.0)
    union = np.where(crowd, da + np.zeros_like(ga), da + ga - inter)
    out = np.zeros(np.broadcast(inter, union).shape, dtype=np.float64)
    np.divide(inter, union, out=out, where=pos)
    return out


def _as_boxes(x) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0:
        return a.reshape(0, 4)
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2 or a.shape[1] != 4:
        raise ValueError(f"boxes must be [N, 4], got shape {a.shape}")
    return a


def box_iou(a, b, fmt: str = "xyxy", iscrowd=None) -> np.ndarray:
    """IoU matrix ``[N, M]`` (float64) between boxes ``a [N, 4]`` (detections) and ``b [M, 4]`` (GT).

    ``fmt``: ``'xyxy'`` (x1, y1, x2, y2) or ``'xywh'`` (COCO: x, y, width, height). Coordinates are
    continuous (no +1). ``iscrowd [M]`` (optional): for crowd columns the union is the area of the ``a``
    box. With ``fmt='xywh'`` the result is bit-identical to ``pycocotools.mask.iou(a, b, iscrowd)``.
    """
    a, b = _as_boxes(a), _as_boxes(b)
    crowd = np.zeros(len(b), bool) if iscrowd is None else np.asarray(iscrowd, bool).reshape(-1)
    if crowd.shape[0] != b.shape[0]:
        raise ValueError("iscrowd must have one flag per box of b")
    d = tuple(v[:, None] for v in _edges(a, fmt))
    g = tuple(v[None, :] for v in _edges(b, fmt))
    return _iou_from_edges(d, g, crowd[None, :])


def box_iou_coco(dt_xywh, gt_xywh, iscrowd=None) -> np.ndarray:
    """pycocotools-compatible ``maskUtils.iou(dt, gt, iscrowd)`` for boxes: ``box_iou(..., fmt='xywh')``.
    (pycocotools returns ``[]`` when either side is empty; this returns a ``[N, 0]`` / ``[0, M]`` array.)"""
    return box_iou(dt_xywh, gt_xywh, fmt="xywh", iscrowd=iscrowd)


def _group_offsets(counts: np.ndarray) -> np.ndarray:
    off = np.zeros(len(counts), dtype=np.int64)
    if len(counts) > 1:
        np.cumsum(counts[:-1], out=off[1:])
    return off


def pairwise_iou_grouped(dt_boxes, gt_boxes, group_n_det, group_n_gt, gt_crowd=None,
                         fmt: str = "xywh") -> np.ndarray:
    """IoU of every (detection, GT) pair *within* each group, flattened.

    Detections and GT are laid out group after group (``group_n_det[g]`` detections, ``group_n_gt[g]`` GT
    for group ``g``, e.g. one group per image-category). Returns ``iou_flat`` = the concatenation over
    groups of each group's row-major ``[n_det, n_gt]`` IoU block: the input of ``match_greedy_grouped``.
    """
    dt_boxes, gt_boxes = _as_boxes(dt_boxes), _as_boxes(gt_boxes)
    nd = np.asarray(group_n_det, np.int64)
    ng = np.asarray(group_n_gt, np.int64)
    crowd = np.zeros(len(gt_boxes), bool) if gt_crowd is None else np.asarray(gt_crowd, bool)
    det_group = np.repeat(np.arange(len(nd)), nd)
    reps = ng[det_group]                                    # pairs per detection
    pair_det = np.repeat(np.arange(len(dt_boxes)), reps)
    pair_start = _group_offsets(reps)
    within = np.arange(len(pair_det)) - np.repeat(pair_start, reps)
    pair_gt = np.repeat(_group_offsets(ng)[det_group], reps) + within
    d = _edges(dt_boxes[pair_det], fmt)
    g = _edges(gt_boxes[pair_gt], fmt)
    return _iou_from_edges(d, g, crowd[pair_gt])


# ----------------------------------------------------------------------------------------- matching
class GreedyMatch(NamedTuple):
    """``dt_match [.., D]``: index of the matched GT or -1; ``dt_ignore [.., D]``: matched to an ignored GT;
    ``gt_match [.., G]``: index of the (last) detection matched to the GT or -1."""
    dt_match: np.ndarray
    dt_ignore: np.ndarray
    gt_match: np.ndarray


def _last_argmax(mask: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = np.where(mask, values, -np.inf)
    n = v.shape[-1]
    return n - 1 - np.argmax(v[..., ::-1], axis=-1), mask.any(axis=-1)


def match_greedy_grouped(iou_flat, group_n_det, group_n_gt, gt_ignore, gt_crowd=None,
                         iou_thresholds=COCO_IOU_THRS) -> GreedyMatch:
    """COCO greedy matching of many independent groups at once (vectorised over groups, area settings and
    IoU thresholds; the only Python loop runs over detection rank).

    Layout: groups are contiguous; within a group the detections must already be in processing order
    (descending score, stable) and ``iou_flat`` holds each group's row-major ``[n_det, n_gt]`` block (see
    ``pairwise_iou_grouped``). ``gt_ignore``: ``[G_total]`` or ``[A, G_total]`` (A settings, e.g. area
    ranges, matched independently). ``gt_crowd [G_total]``: crowd GT can be matched repeatedly.

    Returns ``GreedyMatch`` with arrays ``[A, T, D_total]`` / ``[A, T, G_total]`` (the A axis is dropped when
    ``gt_ignore`` is 1-D) holding *global* indices (into the concatenated detections / GT), -1 if unmatched.
    """
    nd = np.asarray(group_n_det, np.int64).reshape(-1)
    ng = np.asarray(group_n_gt, np.int64).reshape(-1)
    thr = np.minimum(np.asarray(iou_thresholds, np.float64).reshape(-1), 1 - 1e-10)
    ig = np.asarray(gt_ignore, bool)
    squeeze_a = ig.ndim == 1
    ig = ig.reshape(1, -1) if squeeze_a else ig
    n_a, n_t = ig.shape[0], len(thr)
    d_tot, g_tot = int(nd.sum()), int(ng.sum())
    if ig.shape[1] != g_tot:
        raise ValueError(f"gt_ignore has {ig.shape[1]} entries, groups hold {g_tot} GT")
    crowd = np.zeros(g_tot, bool) if gt_crowd is None else np.asarray(gt_crowd, bool).reshape(-1)
    iou_flat = np.asarray(iou_flat, np.float64).reshape(-1)
    if iou_flat.shape[0] != int((nd * ng).sum()):
        raise ValueError("iou_flat does not match the group sizes")

    dt_match = np.full((n_a, n_t, d_tot), -1, np.int64)
    dt_ignore = np.zeros((n_a, n_t, d_tot), bool)
    gt_match = np.full((n_a, n_t, g_tot), -1, np.int64)

    det_off, gt_off, pair_off = _group_offsets(nd), _group_offsets(ng), _group_offsets(nd * ng)
    active = np.nonzero((nd > 0) & (ng > 0))[0]
    if len(active):
        # buckets of similar GT count keep the padding small: ng in (2^(b-1), 2^b]
        bucket = np.ceil(np.log2(ng[active])).astype(np.int64)
        for b in np.unique(bucket):
            sel = active[bucket == b]
            sel = sel[np.argsort(-nd[sel], kind="stable")]   # active groups at rank r form a prefix
            _match_bucket(sel, nd, ng, det_off, gt_off, pair_off, iou_flat, ig, crowd, thr,
                          dt_match, dt_ignore, gt_match)
    if squeeze_a:
        return GreedyMatch(dt_match[0], dt_ignore[0], gt_match[0])
    return GreedyMatch(dt_match, dt_ignore, gt_match)


def _match_bucket(sel, nd, ng, det_off, gt_off, pair_off, iou_flat, ig, crowd, thr,
                  dt_match, dt_ignore, gt_match) -> None:
    n_a, n_t = ig.shape[0], len(thr)
    nd_b, ng_b = nd[sel], ng[sel]
    g_max = int(ng_b.max())
    ar = np.arange(g_max)
    valid = ar[None, :] < ng_b[:, None]                              # [nb, G]
    gidx = np.where(valid, gt_off[sel][:, None] + ar, 0)             # global GT index
    ig_b = ig[:, gidx] & valid                                       # [A, nb, G]
    crowd_b = crowd[gidx] & valid                                    # [nb, G]
    matched = np.zeros((n_a, n_t, len(sel), g_max), bool)
    neg_nd = -nd_b
    for r in range(int(nd_b[0])):
        n = int(np.searchsorted(neg_nd, -r, side="left"))          # groups with more than r detections
        v = valid[:n]
        idx = np.where(v, pair_off[sel[:n]][:, None] + r * ng_b[:n, None] + ar, 0)
        iou_r = iou_flat[idx]                                        # [n, G]
        ok = (iou_r[None] >= thr[:, None, None]) & v                 # [T, n, G]
        cand = (~matched[:, :, :n] | crowd_b[:n]) & ok               # [A, T, n, G]
        ig_r = ig_b[:, None, :n]
        j1, h1 = _last_argmax(cand & ~ig_r, iou_r)                   # best non-ignored GT
        j2, h2 = _last_argmax(cand & ig_r, iou_r)                    # else best ignored GT
        m = np.where(h1, j1, np.where(h2, j2, -1))                   # [A, T, n]
        det = det_off[sel[:n]] + r
        dt_match[:, :, det] = np.where(m >= 0, gidx[:n][np.arange(n), np.maximum(m, 0)], -1)
        dt_ignore[:, :, det] = ~h1 & h2
        aa, tt, gg = np.nonzero(m >= 0)
        mm = m[aa, tt, gg]
        matched[aa, tt, gg, mm] = True
        gt_match[aa, tt, gidx[gg, mm]] = det[gg]


def match_greedy(ious, gt_ignore=None, gt_crowd=None, iou_thresholds=0.5, det_scores=None) -> GreedyMatch:
    """COCO greedy matching of one image (-category): ``ious [D, G]`` (rows detections, columns GT).

    ``det_scores [D]``: if given, detections are processed by descending score with a stable sort
    (``np.argsort(-s, kind='mergesort')``), otherwise in row order. ``gt_ignore [G]`` (default none ignored),
    ``gt_crowd [G]`` (default none). ``iou_thresholds``: a scalar (outputs ``[D]`` / ``[G]``) or a sequence
    of T thresholds (outputs ``[T, D]`` / ``[T, G]``). Indices refer to the *input* order of rows/columns.
    Apply the area rule yourself (COCO: an unmatched detection outside the area range is ignored).
    """
    ious = np.asarray(ious, np.float64)
    if ious.ndim != 2:
        raise ValueError(f"ious must be [D, G], got shape {ious.shape}")
    n_d, n_g = ious.shape
    scalar = np.ndim(iou_thresholds) == 0
    ig = np.zeros(n_g, bool) if gt_ignore is None else np.asarray(gt_ignore, bool).reshape(-1)
    order = np.arange(n_d) if det_scores is None else np.argsort(
        -np.asarray(det_scores, np.float64).reshape(-1), kind="mergesort")
    res = match_greedy_grouped(ious[order].reshape(-1), [n_d], [n_g], ig, gt_crowd, iou_thresholds)
    dt_match = np.empty_like(res.dt_match)
    dt_ignore = np.empty_like(res.dt_ignore)
    dt_match[:, order] = res.dt_match
    dt_ignore[:, order] = res.dt_ignore
    gt_match = np.append(order, -1)[res.gt_match]  # -1 (unmatched) picks the appended -1
    if scalar:
        return GreedyMatch(dt_match[0], dt_ignore[0], gt_match[0])
    return GreedyMatch(dt_match, dt_ignore, gt_match)


# ------------------------------------------------------------------------------------------------ AP
class CocoPR(NamedTuple):
    """``ap [...]`` (mean of ``precision`` over recall points), ``precision [..., R]``, ``recall [...]``
    (maximal recall), ``scores [..., R]`` (score of the detection where each recall point is reached)."""
    ap: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    scores: np.ndarray


def ap_coco_101(tp, fp, n_gt, scores=None, rec_thrs=COCO_REC_THRS) -> CocoPR:
    """COCO interpolated AP from per-detection flags in descending-score order.

    ``tp, fp [..., D]``: 0/1 flags (leading dimensions, e.g. IoU thresholds, are vectorised); an ignored
    detection has ``tp = fp = 0`` (or is removed: the result is the same). ``n_gt``: number of non-ignored
    GT (scalar or broadcastable to the leading dimensions). ``scores [D]``: optional, only fills
    ``CocoPR.scores``. ``rec_thrs`` default: the 101 points ``np.linspace(0, 1, 101)``.
    Rows with ``n_gt == 0`` get ``ap = NaN`` and precision / recall / scores ``-1`` (COCOeval's "absent").
    The arithmetic is COCOeval.accumulate's, so values are bit-identical.
    """
    tp = np.asarray(tp)
    fp = np.asarray(fp)
    if tp.shape != fp.shape:
        raise ValueError("tp and fp must have the same shape")
    lead, n_det = tp.shape[:-1], tp.shape[-1]
    rec_thrs = np.asarray(rec_thrs, np.float64)
    n_r = len(rec_thrs)
    n_gt = np.broadcast_to(np.asarray(n_gt, np.float64), lead)
    tp_sum = np.cumsum(tp, axis=-1).astype(dtype=float)
    fp_sum = np.cumsum(fp, axis=-1).astype(dtype=float)
    sc = None if scores is None else np.asarray(scores, np.float64).reshape(-1)
    precision = np.zeros(lead + (n_r,))
    score_at = np.zeros(lead + (n_r,))
    recall = np.zeros(lead)
    absent = n_gt == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        rc = tp_sum / n_gt[..., None]
    pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))
    if n_det:
        pr = np.maximum.accumulate(pr[..., ::-1], axis=-1)[..., ::-1]   # precision envelope
        recall = rc[..., -1].copy()
        rc2 = rc.reshape(-1, n_det)
        pr2 = pr.reshape(-1, n_det)
        prec2 = precision.reshape(-1, n_r)
        sc2 = score_at.reshape(-1, n_r)
        for i in np.nonzero(~absent.reshape(-1))[0]:
            inds = np.searchsorted(rc2[i], rec_thrs, side="left")
            ok = inds < n_det
            prec2[i, ok] = pr2[i, inds[ok]]
            if sc is not None:
                sc2[i, ok] = sc[inds[ok]]
    precision[absent] = -1
    score_at[absent] = -1
    recall = np.where(absent, -1.0, recall)
    ap = np.where(absent, np.nan, precision.mean(axis=-1) if n_r else np.nan)
    return CocoPR(ap, precision, recall, score_at)


def ap_all_points(recall, precision) -> float:
    """All-point AP (PASCAL VOC 2010+ / Open Images challenge; TF OD API ``compute_average_precision``).

    ``recall``, ``precision``: per detection in descending-score order (recall non-decreasing). Pads with
    recall 0/1 and precision 0/0, takes the envelope ``p[i] = max(p[i:])`` and sums ``(r[i] - r[i-1]) * p[i]``
    over the points where recall changes. Empty inputs give 0.0 (no detection: AP 0).
    """
    r = np.asarray(recall, np.float64).reshape(-1)
    p = np.asarray(precision, np.float64).reshape(-1)
    if r.shape != p.shape:
        raise ValueError("recall and precision must have the same length")
    if np.any(np.diff(r) < 0):
        raise ValueError("recall must be non-decreasing (detections in descending score order)")
    if np.any((p < 0) | (p > 1)) or np.any((r < 0) | (r > 1)):
        raise ValueError("precision and recall must lie in [0, 1]")
    r = np.concatenate([[0.0], r, [1.0]])
    p = np.concatenate([[0.0], p, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    idx = np.nonzero(r[1:] != r[:-1])[0] + 1
    return float(np.sum((r[idx] - r[idx - 1]) * p[idx]))


# ---------------------------------------------------------------------------------------- COCOeval
def load_json(src: Any) -> Any:
    """A parsed JSON object from a path (``.json`` or ``.json.gz``) or the object itself."""
    if isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            return json.load(f)
    return src


def _index_of(sorted_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each id in ``sorted_ids`` and whether it is there."""
    if len(sorted_ids) == 0:
        return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
    pos = np.searchsorted(sorted_ids, ids)
    pos = np.minimum(pos, len(sorted_ids) - 1)
    return pos, sorted_ids[pos] == ids


def _summarize(ev: dict[str, Any], ap: int, iou_thr=None, area="all", max_dets=100) -> float:
    """``COCOeval.summarize._summarize``, line for line."""
    aind = [i for i, a in enumerate(ev["area_lbl"]) if a == area]
    mind = [i for i, m in enumerate(ev["max_dets"]) if m == max_dets]
    if ap == 1:
        s = ev["precision"]
        if iou_thr is not None:
            s = s[np.where(iou_thr == ev["iou_thrs"])[0]]
        s = s[:, :, :, aind, mind]
    else:
        s = ev["recall"]
        if iou_thr is not None:
            s = s[np.where(iou_thr == ev["iou_thrs"])[0]]
        s = s[:, :, aind, mind]
    return -1.0 if len(s[s > -1]) == 0 else float(np.mean(s[s > -1]))


def coco_evaluate(gt_json: Any, dt_json: Any, iou_type: str = "bbox", *,
                  img_ids: Sequence[int] | None = None, cat_ids: Sequence[int] | None = None,
                  iou_thrs: Sequence[float] = COCO_IOU_THRS, rec_thrs: Sequence[float] = COCO_REC_THRS,
                  max_dets: Sequence[int] = COCO_MAX_DETS, area_rng: Sequence[Sequence[float]] = COCO_AREA_RNG,
                  area_lbl: Sequence[str] = COCO_AREA_LBL) -> dict[str, Any]:
    """COCO box evaluation, equal to pycocotools ``COCOeval(gt, dt, 'bbox')`` + evaluate/accumulate/summarize.

    ``gt_json``: path (``.json``/``.json.gz``) or dict in COCO format (or a pycocotools ``COCO``);
    ``dt_json``: path or list of ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``.
    Keyword parameters mirror ``COCOeval.params`` (``imgIds``, ``catIds``, ``iouThrs``, ``recThrs``,
    ``maxDets``, ``areaRng``, ``areaRngLbl``); the 12 stats assume the default layout, like ``summarize``.

    Returns a dict: the 12 stats by name (``"AP"``, ``"AP50"``, ..., ``"ARl"``), ``"stats"`` (the same 12 in
    pycocotools order), ``"per_category_AP"`` ({category id: AP, NaN without GT}), and ``"precision"``
    ``[T,R,K,A,M]``, ``"recall"`` ``[T,K,A,M]``, ``"scores"`` ``[T,R,K,A,M]`` exactly as ``COCOeval.eval``, with
    the parameters used (``"img_ids"``, ``"cat_ids"``, ``"iou_thrs"``, ``"rec_thrs"``, ``"max_dets"``,
    ``"area_rng"``, ``"area_lbl"``).
    """
    if iou_type != "bbox":
        raise NotImplementedError(f"iou_type={iou_type!r}: only 'bbox' is implemented")
    gt = load_json(gt_json)
    if hasattr(gt, "dataset"):  # a pycocotools COCO object
        gt = gt.dataset
    dts = load_json(dt_json)
    if hasattr(dts, "dataset"):
        dts = dts.dataset["annotations"]
    if not isinstance(dts, list):
        raise TypeError("detections must be a list of result dicts (COCO results format)")

    all_img = np.unique(np.asarray([im["id"] for im in gt["images"]], dtype=np.int64))
    imgs = all_img if img_ids is None else np.unique(np.asarray(list(img_ids), dtype=np.int64))
    cats = (np.unique(np.asarray([c["id"] for c in gt["categories"]], dtype=np.int64))
            if cat_ids is None else np.unique(np.asarray(list(cat_ids), dtype=np.int64)))
    iou_thrs = np.asarray(iou_thrs, np.float64)
    rec_thrs = np.asarray(rec_thrs, np.float64)
    max_dets = sorted(int(m) for m in max_dets)
    area_rng = np.asarray(area_rng, np.float64).reshape(-1, 2)
    n_i, n_k, n_a, n_m, n_t, n_r = len(imgs), len(cats), len(area_rng), len(max_dets), len(iou_thrs), len(rec_thrs)
    lo, hi = area_rng[:, 0][:, None], area_rng[:, 1][:, None]

    # ---- ground truth: filter, then order by (category, image, file order)
    anns = gt.get("annotations", [])
    g_img = np.asarray([a["image_id"] for a in anns], dtype=np.int64)
    g_cat = np.asarray([a["category_id"] for a in anns], dtype=np.int64)
    g_box = _as_boxes([a["bbox"] for a in anns])
    g_area = np.asarray([a["area"] if "area" in a else a["bbox"][2] * a["bbox"][3] for a in anns], np.float64)
    g_crowd = np.asarray([bool(a.get("iscrowd", 0)) for a in anns], bool)
    g_id = np.asarray([a.get("id", i + 1) for i, a in enumerate(anns)], dtype=np.int64)
    if len(np.unique(g_id)) != len(g_id):
        raise ValueError("ground-truth annotation ids must be unique")
    gi, gin = _index_of(imgs, g_img)
    gk, gkn = _index_of(cats, g_cat)
    keep = np.nonzero(gin & gkn)[0]
    order = keep[np.lexsort((gi[keep], gk[keep]))]
    gi, gk, g_box, g_area, g_crowd, g_id = gi[order], gk[order], g_box[order], g_area[order], g_crowd[order], g_id[order]
    g_ig = g_crowd[None, :] | (g_area[None, :] < lo) | (g_area[None, :] > hi)        # [A, G]

    # ---- detections: check images, filter, order by (category, image, -score stable), cut to maxDets[-1]
    d_img = np.asarray([d["image_id"] for d in dts], dtype=np.int64)
    if len(d_img) and not _index_of(all_img, d_img)[1].all():
        raise ValueError("Results do not correspond to current coco set (detections on unknown images)")
    d_cat = np.asarray([d["category_id"] for d in dts], dtype=np.int64)
    d_box = _as_boxes([d["bbox"] for d in dts])
    d_score = np.asarray([d["score"] for d in dts], dtype=np.float64)
    di, din = _index_of(imgs, d_img)
    dk, dkn = _index_of(cats, d_cat)
    keep = np.nonzero(din & dkn)[0]
    order = keep[np.lexsort((-d_score[keep], di[keep], dk[keep]))]
    di, dk, d_box, d_score = di[order], dk[order], d_box[order], d_score[order]
    d_key = dk * n_i + di
    starts = np.r_[True, d_key[1:] != d_key[:-1]] if len(d_key) else np.zeros(0, bool)
    first = np.maximum.accumulate(np.where(starts, np.arange(len(d_key)), 0)) if len(d_key) else np.zeros(0, np.int64)
    d_rank = np.arange(len(d_key)) - first
    keep = d_rank < max_dets[-1]
    di, dk, d_box, d_score, d_key, d_rank = di[keep], dk[keep], d_box[keep], d_score[keep], d_key[keep], d_rank[keep]
    d_area = d_box[:, 2] * d_box[:, 3]
    d_out = (d_area[None, :] < lo) | (d_area[None, :] > hi)                         # [A, D]

    # ---- groups = (category, image) pairs present on either side, in the common sort order
    g_key = gk * n_i + gi
    keys = np.union1d(d_key, g_key)
    grp_nd = np.searchsorted(d_key, keys, "right") - np.searchsorted(d_key, keys, "left")
    grp_ng = np.searchsorted(g_key, keys, "right") - np.searchsorted(g_key, keys, "left")
    iou_flat = pairwise_iou_grouped(d_box, g_box, grp_nd, grp_ng, g_crowd, fmt="xywh")
    match = match_greedy_grouped(iou_flat, grp_nd, grp_ng, g_ig, g_crowd, iou_thrs)  # [A, T, D]

    matched = match.dt_match >= 0
    # pycocotools keeps the matched GT *id* and tests it for truth: a GT with id 0 never "matches"
    has_id = matched & (g_id[np.maximum(match.dt_match, 0)] != 0) if len(g_id) else matched
    d_ignore = match.dt_ignore | (~has_id & d_out[:, None, :])
    tps = has_id & ~d_ignore
    fps = ~has_id & ~d_ignore

    npig = np.zeros((n_k, n_a), np.int64)                                            # non-ignored GT
    for a in range(n_a):
        npig[:, a] = np.bincount(gk[~g_ig[a]], minlength=n_k)

    precision = -np.ones((n_t, n_r, n_k, n_a, n_m))
    recall = -np.ones((n_t, n_k, n_a, n_m))
    scores = -np.ones((n_t, n_r, n_k, n_a, n_m))
    c_start = np.searchsorted(dk, np.arange(n_k), "left")
    c_end = np.searchsorted(dk, np.arange(n_k), "right")
    for k in range(n_k):
        areas = np.nonzero(npig[k] > 0)[0]
        if len(areas) == 0:
            continue
        sl = slice(c_start[k], c_end[k])
        for m, md in enumerate(max_dets):
            sel = np.nonzero(d_rank[sl] < md)[0] + c_start[k]
            inds = np.argsort(-d_score[sel], kind="mergesort")
            sel = sel[inds]
            res = ap_coco_101(tps[:, :, sel][areas], fps[:, :, sel][areas], npig[k, areas][:, None],
                              scores=d_score[sel], rec_thrs=rec_thrs)                # [a, T, ...]
            precision[:, :, k, areas, m] = res.precision.transpose(1, 2, 0)
            scores[:, :, k, areas, m] = res.scores.transpose(1, 2, 0)
            recall[:, k, areas, m] = res.recall.T

    ev = {"precision": precision, "recall": recall, "scores": scores, "iou_thrs": iou_thrs,
          "rec_thrs": rec_thrs, "max_dets": max_dets, "area_rng": area_rng, "area_lbl": list(area_lbl),
          "img_ids": imgs, "cat_ids": cats}
    md = max_dets
    stats = [
        _summarize(ev, 1),
        _summarize(ev, 1, iou_thr=.5, max_dets=md[2] if n_m > 2 else md[-1]),
        _summarize(ev, 1, iou_thr=.75, max_dets=md[2] if n_m > 2 else md[-1]),
        _summarize(ev, 1, area="small", max_dets=md[2] if n_m > 2 else md[-1]),
        _summarize(ev, 1, area="medium", max_dets=md[2] if n_m > 2 else md[-1]),
        _summarize(ev, 1, area="large", max_dets=md[2] if n_m > 2 else md[-1]),
        _summarize(ev, 0, max_dets=md[0]),
        _summarize(ev, 0, max_dets=md[1] if n_m > 1 else md[-1]),
        _summarize(ev, 0, max_dets=md[2] if n_m > 2 else md[-1]),
        _summarize(ev, 0, area="small", max_dets=md[2] if n_m > 2 else md[-1]),
        _summarize(ev, 0, area="medium", max_dets=md[2] if n_m > 2 else md[-1]),
        _summarize(ev, 0, area="large", max_dets=md[2] if n_m > 2 else md[-1]),
    ]
    per_cat = {}
    a_all = [i for i, a in enumerate(area_lbl) if a == "all"]
    for k, cid in enumerate(cats):
        s = precision[:, :, k, a_all[0] if a_all else 0, n_m - 1]
        per_cat[int(cid)] = float(np.mean(s[s > -1])) if np.any(s > -1) else float("nan")
    out: dict[str, Any] = dict(zip(COCO_STAT_NAMES, stats))
    out["stats"] = stats
    out["per_category_AP"] = per_cat
    out.update(ev)
    return out
