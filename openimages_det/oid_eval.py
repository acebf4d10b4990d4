"""The Open Images Challenge 2019 detection metric, vectorised, equal to the TensorFlow Object Detection
API (``oid_challenge_evaluation.py`` with ``OpenImagesChallengeEvaluator``, ``evaluate_masks=False``,
``group_of_weight=1``) and to its hierarchy tool (``oid_hierarchical_labels_expansion.py``).

``expand_hierarchy(df, hierarchy, kind)``: the official ground-truth expansion. Every box row is
followed by one copy per ancestor of its label; every image-level label with Confidence 1 by one copy
per ancestor, with Confidence 0 by one copy per descendant. Each ancestor / descendant appears once
(the 2019 tool keeps them in sets); the virtual root is never added. Predictions are never expanded.

``evaluate(boxes, labels, predictions)`` (paths or DataFrames; ``hierarchy=`` expands the ground truth
first) follows the official evaluator step by step:

1. Images: the union of images with ground truth (boxes or labels) and images with predictions.
   Evaluatable classes of an image = all its image-level labels (Confidence 0 or 1: both are
   verified) ∪ the classes of its boxes; detections of other classes are dropped. Detections with
   YMin >= YMax or XMin >= XMax are dropped.
2. Per image and class, detections in descending score (``argsort(score)[::-1]``; ties: the later row
   first, which is what NumPy's sort does on small arrays; the official tie order is not specified).
   Each detection looks only at the non-group-of box of highest IoU (the first on equal IoU): IoU ≥ 0.5
   and the box still free: true positive, box taken; otherwise false positive (no fallback to the
   second-best box).
3. Detections left false positive look at the group-of box of highest IoA (intersection over the
   detection's area, ``box_iou`` with ``iscrowd``): IoA ≥ 0.5 takes them out of the list; each group-of
   box with a matched detection of positive score adds one true positive of weight 1 at the maximal
   matched score, after the image's detections; an unmatched group-of box is a miss.
4. Per class: ground-truth count = non-group-of boxes + group-of boxes (weight 1); the image blocks in
   ImageID order are concatenated and sorted by score (descending, later entry first on ties),
   precision = TP / (TP + FP), recall = TP / count, AP = ``shared.metrics.detection.ap_all_points``.
   Classes without ground truth get NaN and are left out of the mean; a class with ground truth and
   no detection has AP 0.

Returns the official keys: ``OpenImagesDetectionChallenge_Precision/mAP@0.5IOU`` and
``OpenImagesDetectionChallenge_PerformanceByCategory/AP@0.5IOU/<LabelName>`` for every class (NaN for
classes without ground truth), as fractions. The official code also computes CorLoc, which is not
reported for this metric.

Equal to the official numbers on the reference vectors to 1e-9, and equal to a loop written with the
official structure (``oid_eval_loop.py``) on randomised cases with group-of boxes, negatives and ties;
runs on numpy 2 and pandas 3 (the official code does not). One pass over sorted arrays: no Python loop
over images, the only loop runs over classes for the AP.

    python -m openimages_det.oid_eval --boxes B.csv --labels L.csv --predictions P.csv \
        [--hierarchy H.json] [--classes labelmap.pbtxt|class-descriptions.csv] --out metrics.csv
"""
from __future__ import annotations

import argparse
import csv
import sys

import numpy as np
import pandas as pd

from openimages_det.annotations import read_boxes, read_classes, read_image_labels, read_predictions
from openimages_det.hierarchy import load_hierarchy
from shared.metrics.detection import ap_all_points, pairwise_iou_grouped

__all__ = ["expand_hierarchy", "evaluate", "METRIC_PREFIX", "map_key", "ap_key", "per_class_ap", "write_metrics_csv"]

METRIC_PREFIX = "OpenImagesDetectionChallenge"


def map_key(iou: float = 0.5) -> str:
    return f"{METRIC_PREFIX}_Precision/mAP@{iou}IOU"


def ap_key(label: str, iou: float = 0.5) -> str:
    return f"{METRIC_PREFIX}_PerformanceByCategory/AP@{iou}IOU/{label}"


# ------------------------------------------------------------------------------ GT expansion
def expand_hierarchy(df: pd.DataFrame, hierarchy, kind: str = "boxes") -> pd.DataFrame:
    """The official ground-truth expansion of a boxes (``kind='boxes'``) or image-labels
    (``kind='labels'``) table: each row, then its copies for the label's ancestors (boxes, positive
    labels) or descendants (negative labels). Other columns are copied unchanged."""
    if kind not in ("boxes", "labels"):
        raise ValueError(f"kind must be 'boxes' or 'labels', got {kind!r}")
    h = load_hierarchy(hierarchy)
    if "LabelName" not in df.columns or (kind == "labels" and "Confidence" not in df.columns):
        raise ValueError(f"expand_hierarchy({kind}): the table needs LabelName{' and Confidence' if kind == 'labels' else ''}")
    negative = (df["Confidence"].to_numpy() == 0) if kind == "labels" else np.zeros(len(df), bool)
    inv, uniq = pd.factorize(df["LabelName"])
    uniq = np.asarray(uniq, dtype=object)
    missing = [u for u in uniq if u not in h]
    if missing:
        first = int(np.flatnonzero(uniq[inv] == missing[0])[0])
        raise ValueError(f"row {first}: LabelName {missing[0]!r} is not in {h.source} "
                         f"({len(missing)} label(s) missing, the official tool asserts on them)")
    # one expansion list per (label, negative) pair, then a vectorised gather
    key = inv * 2 + negative.astype(np.int64)
    table, starts, lens = [], np.zeros(2 * len(uniq), np.int64), np.zeros(2 * len(uniq), np.int64)
    for k in np.unique(key):
        lab = uniq[k // 2]
        extra = h.descendants(lab) if k % 2 else h.ancestors(lab)
        starts[k] = len(table)
        lens[k] = 1 + len(extra)
        table.extend((lab, *extra))
    table = np.asarray(table, dtype=object)
    n_out = lens[key]
    rows = np.repeat(np.arange(len(df)), n_out)
    first = np.repeat(np.cumsum(n_out) - n_out, n_out)
    within = np.arange(len(rows)) - first
    out = df.iloc[rows].reset_index(drop=True)
    out["LabelName"] = pd.Categorical(table[starts[key][rows] + within])
    return out


# ------------------------------------------------------------------------------ helpers
def _segment_first_argmax(values: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per segment (consecutive ``counts`` values, all counts > 0): (max, index of its first occurrence
    within the segment), as ``np.argmax`` gives per row."""
    starts = np.cumsum(counts) - counts
    mx = np.maximum.reduceat(values, starts)
    seg = np.repeat(np.arange(len(counts)), counts)
    local = np.arange(len(values)) - starts[seg]
    cand = np.where(values == mx[seg], local, np.iinfo(np.int64).max)
    return mx, np.minimum.reduceat(cand, starts)


def _codes(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Positions of a column's values in ``index`` (through the categories for a categorical column)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return index.get_indexer(values.cat.categories.astype(str))[values.cat.codes.to_numpy()].astype(np.int64)
    return index.get_indexer(values.astype(str)).astype(np.int64)


def _distinct(*columns: pd.Series) -> np.ndarray:
    """Sorted distinct values of several string columns (categorical or not)."""
    parts = [np.asarray(c.cat.categories.astype(str) if isinstance(c.dtype, pd.CategoricalDtype) else c.unique(),
                        dtype=object) for c in columns]
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, object)


def _yxyx_to_xyxy(df: pd.DataFrame) -> np.ndarray:
    return np.column_stack([df["XMin"].to_numpy(np.float64), df["YMin"].to_numpy(np.float64),
                            df["XMax"].to_numpy(np.float64), df["YMax"].to_numpy(np.float64)])


def _load_inputs(boxes, labels, predictions, classes, hierarchy):
    known = None if classes is None else [c if isinstance(c, str) else c[0] for c in classes]
    gt_boxes = read_boxes(boxes)
    gt_labels = read_image_labels(labels)
    preds = read_predictions(predictions)
    if hierarchy is not None:
        h = load_hierarchy(hierarchy)
        gt_boxes = expand_hierarchy(gt_boxes, h, "boxes")
        gt_labels = expand_hierarchy(gt_labels, h, "labels")
    if known is None:
        known = list(_distinct(gt_boxes["LabelName"], gt_labels["LabelName"], preds["LabelName"]))
    else:
        for df, what in ((gt_boxes, "ground-truth boxes"), (gt_labels, "image labels"), (preds, "predictions")):
            bad = ~df["LabelName"].isin(known).to_numpy()
            if bad.any():  # the official evaluator raises a KeyError in its label map lookup
                raise ValueError(f"{what}: LabelName {df['LabelName'].iloc[int(np.flatnonzero(bad)[0])]!r} is "
                                 f"not one of the {len(known)} classes ({int(bad.sum())} row(s))")
    return gt_boxes, gt_labels, preds, known


# ------------------------------------------------------------------------------ the metric
def evaluate(boxes, labels, predictions, *, classes=None, hierarchy=None, iou_threshold: float = 0.5,
             group_of_weight: float = 1.0) -> dict:
    """Open Images Challenge 2019 detection metric (see the module docstring).

    boxes / labels / predictions: CSV paths or DataFrames (columns by name). ``classes``: the class
    list in evaluator order (LabelNames, or (LabelName, DisplayName) pairs; default: every label seen,
    sorted); labels outside it are an error, as in the official evaluator. ``hierarchy``: a hierarchy
    (path, JSON dict or ``Hierarchy``) to expand the ground truth with first (leave it None for
    already-expanded files). Returns {official key: value} with the mAP first, then one AP per class.
    """
    gt_boxes, gt_labels, preds, class_names = _load_inputs(boxes, labels, predictions, classes, hierarchy)
    cls_index = pd.Index(class_names)
    if not cls_index.is_unique:
        raise ValueError("classes must be unique")
    n_cls = len(cls_index)
    # images in ImageID order (the official loop is a sorted groupby)
    img_index = pd.Index(_distinct(gt_boxes["ImageID"], gt_labels["ImageID"], preds["ImageID"]))

    g_img = _codes(gt_boxes["ImageID"], img_index)
    g_cls = _codes(gt_boxes["LabelName"], cls_index)
    g_box = _yxyx_to_xyxy(gt_boxes)
    g_group = gt_boxes["IsGroupOf"].to_numpy() != 0            # astype(bool), as the official
    l_img = _codes(gt_labels["ImageID"], img_index)
    l_cls = _codes(gt_labels["LabelName"], cls_index)

    # ground-truth count per class: non-group-of boxes + weight x group-of boxes
    n_gt = (np.bincount(g_cls[~g_group], minlength=n_cls).astype(np.float64)
            + group_of_weight * np.bincount(g_cls[g_group], minlength=n_cls))

    # detections: evaluatable (image, class) and valid boxes only
    d_img = _codes(preds["ImageID"], img_index)
    d_cls = _codes(preds["LabelName"], cls_index)
    d_box = _yxyx_to_xyxy(preds)
    d_score = preds["Score"].to_numpy(np.float64)
    evaluatable = np.unique(np.concatenate([l_img * n_cls + l_cls, g_img * n_cls + g_cls]))
    d_key = d_img * n_cls + d_cls
    keep = np.isin(d_key, evaluatable) & (d_box[:, 1] < d_box[:, 3]) & (d_box[:, 0] < d_box[:, 2])
    d_pos = np.flatnonzero(keep)
    # processing order: (image, class), score descending, the later row first on ties
    order = d_pos[np.lexsort((-d_pos, -d_score[d_pos], d_key[d_pos]))]
    d_key, d_box, d_score = d_key[order], d_box[order], d_score[order]
    n_det = len(d_key)

    g_key = g_img * n_cls + g_cls
    tp = np.zeros(n_det, bool)
    matched_group = np.zeros(n_det, bool)
    group_entries = (np.zeros(0, np.int64), np.zeros(0))     # (group-of GT index, score)
    if n_det:
        det_keys, det_counts = np.unique(d_key, return_counts=True)
        # stage 1: the best non-group-of box; the first detection (in order) pointing at a box takes it
        ng_idx = np.flatnonzero(~g_group)
        ng_idx = ng_idx[np.argsort(g_key[ng_idx], kind="stable")]
        target, has_gt = _best_match(d_key, d_box, det_keys, det_counts, g_key[ng_idx], g_box[ng_idx], crowd=False)
        cand = np.flatnonzero(has_gt & (target[0] >= iou_threshold))
        _, first = np.unique(ng_idx[target[1][cand]], return_index=True)
        tp[cand[first]] = True
        # stage 2: detections left false positive against group-of boxes (IoA)
        rest = np.flatnonzero(~tp)
        gr_idx = np.flatnonzero(g_group)
        gr_idx = gr_idx[np.argsort(g_key[gr_idx], kind="stable")]
        if len(rest) and len(gr_idx):
            r_keys, r_counts = np.unique(d_key[rest], return_counts=True)
            (ioa, which), has_g = _best_match(d_key[rest], d_box[rest], r_keys, r_counts, g_key[gr_idx],
                                              g_box[gr_idx], crowd=True)
            hit = has_g & (ioa >= iou_threshold)
            matched_group[rest[hit]] = True
            gt_of = gr_idx[which[hit]]
            best = np.zeros(len(g_key))
            np.maximum.at(best, gt_of, d_score[rest[hit]])     # scores_group_of starts at 0
            got = np.flatnonzero(best > 0)
            group_entries = (got, best[got])

    # entries: the image's valid detections in processing order, then its group-of true positives
    valid = ~matched_group
    e_key = np.concatenate([d_key[valid], g_key[group_entries[0]]])
    e_sub = np.concatenate([np.zeros(int(valid.sum()), np.int64), np.ones(len(group_entries[0]), np.int64)])
    e_pos = np.concatenate([np.arange(n_det)[valid], group_entries[0]])
    e_score = np.concatenate([d_score[valid], group_entries[1]])
    e_label = np.concatenate([tp[valid].astype(np.float64), np.full(len(group_entries[0]), float(group_of_weight))])
    e_img, e_cls = e_key // n_cls, e_key % n_cls
    concat = np.empty(len(e_key), np.int64)
    concat[np.lexsort((e_pos, e_sub, e_img, e_cls))] = np.arange(len(e_key))
    final = np.lexsort((-concat, -e_score, e_cls))              # argsort(scores)[::-1] per class
    e_cls, e_label = e_cls[final], e_label[final]

    ap = np.full(n_cls, np.nan)
    bounds = np.searchsorted(e_cls, np.arange(n_cls + 1))
    for c in np.flatnonzero(n_gt > 0):
        lab = e_label[bounds[c]:bounds[c + 1]]
        ctp = np.cumsum(lab)
        cfp = np.cumsum((lab <= 0).astype(np.float64))
        ap[c] = ap_all_points(ctp / n_gt[c], ctp / (ctp + cfp))
    out = {map_key(iou_threshold): float(np.nanmean(ap)) if np.any(n_gt > 0) else float("nan")}
    for c, name in enumerate(class_names):
        out[ap_key(name, iou_threshold)] = float(ap[c])
    return out


def _best_match(d_key, d_box, det_keys, det_counts, gt_key_sorted, gt_box_sorted, crowd: bool):
    """For each detection (grouped by key, keys ascending): ((best overlap, index into the sorted GT
    of its first maximum), has GT). Overlap = IoU, or IoA over the detection's area when ``crowd``."""
    lo = np.searchsorted(gt_key_sorted, det_keys, "left")
    hi = np.searchsorted(gt_key_sorted, det_keys, "right")
    ng = hi - lo
    n_det = len(d_key)
    best = np.zeros(n_det)
    which = np.zeros(n_det, np.int64)
    det_ng = np.repeat(ng, det_counts)
    has = det_ng > 0
    if not has.any():
        return (best, which), has
    sel = np.flatnonzero(ng > 0)
    gt_rows = _ranges(lo[sel], hi[sel])
    det_rows = np.flatnonzero(has)
    flat = pairwise_iou_grouped(d_box[det_rows], gt_box_sorted[gt_rows], det_counts[sel], ng[sel],
                                np.full(len(gt_rows), crowd), fmt="xyxy")
    mx, arg = _segment_first_argmax(flat, det_ng[det_rows])
    gt_first = np.repeat(lo[sel], det_counts[sel])
    best[det_rows] = mx
    which[det_rows] = gt_first + arg
    return (best, which), has


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(lo[i], hi[i])`` without a Python loop."""
    n = hi - lo
    starts = np.cumsum(n) - n
    return np.repeat(lo - starts, n) + np.arange(int(n.sum()))


def per_class_ap(metrics: dict, iou: float = 0.5) -> dict:
    """{LabelName: AP} from the official keys of ``evaluate``'s result."""
    prefix = ap_key("", iou)
    return {k[len(prefix):]: v for k, v in metrics.items() if k.startswith(prefix)}


def write_metrics_csv(metrics: dict, path) -> None:
    """``metric,value`` rows without a header, as the official ``io_utils.write_csv``."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        for k, v in metrics.items():
            w.writerow([k, repr(float(v))])


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("Open Images Challenge 2019 detection metric", add_help=add_help)
    p.add_argument("--boxes", required=True, help="ground-truth boxes CSV (expanded, or give --hierarchy)")
    p.add_argument("--labels", required=True, help="human-verified image-level labels CSV")
    p.add_argument("--predictions", required=True, help="ImageID,LabelName,Score,XMin,XMax,YMin,YMax CSV")
    p.add_argument("--hierarchy", default="", help="hierarchy JSON: expand the ground truth first")
    p.add_argument("--classes", default="", help="labelmap.pbtxt or class-descriptions CSV (evaluator class order)")
    p.add_argument("--out", default="", help="write metric,value rows here (the official metrics.csv)")
    return p


def main(args) -> dict:
    classes = [c for c, _ in read_classes(args.classes)] if args.classes else None
    metrics = evaluate(args.boxes, args.labels, args.predictions, classes=classes, hierarchy=args.hierarchy or None)
    if args.out:
        write_metrics_csv(metrics, args.out)
    key = map_key()
    print(f"{key},{metrics[key]!r}")
    return metrics


if __name__ == "__main__":
    main(get_args_parser().parse_args(sys.argv[1:]))
