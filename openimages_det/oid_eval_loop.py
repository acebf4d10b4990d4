"""The Open Images Challenge metric written as the official evaluator is organised: a loop over images,
a loop over the classes present in each image, greedy matching one detection at a time.

It exists to check ``oid_eval.evaluate`` on randomised cases (tests) and as the baseline of
``bench/bench_oid_eval.py``; it shares the input readers and the AP function, nothing else. (The
official per-image loop visits every class of the label map, present or not; this one visits only the
classes with detections, which makes it faster than the official code, not slower.) Tie rule as in
``oid_eval``: descending score, the later entry first.
"""
from __future__ import annotations

import numpy as np

from openimages_det.oid_eval import _load_inputs, ap_key, map_key
from shared.metrics.detection import ap_all_points, box_iou

__all__ = ["evaluate_loop"]


def _desc(scores: np.ndarray) -> np.ndarray:
    return np.argsort(scores, kind="stable")[::-1]


def _image_class(det_boxes, det_scores, gt_boxes, gt_group, iou_thr, group_weight):
    """(scores, tp labels) of one image and class: the official ``_compute_tp_fp_for_single_class``."""
    order = _desc(det_scores)
    det_boxes, det_scores = det_boxes[order], det_scores[order]
    n = len(det_scores)
    tp = np.zeros(n, bool)
    in_group = np.zeros(n, bool)
    normal, group = gt_boxes[~gt_group], gt_boxes[gt_group]
    if len(normal):
        iou = box_iou(det_boxes, normal)
        best = np.argmax(iou, axis=1)
        taken = np.zeros(len(normal), bool)
        for i in range(n):
            g = best[i]
            if iou[i, g] >= iou_thr and not taken[g]:
                tp[i] = True
                taken[g] = True
    group_scores = np.zeros(0)
    if len(group):
        ioa = box_iou(det_boxes, group, iscrowd=np.ones(len(group), bool))
        best = np.argmax(ioa, axis=1)
        top = np.zeros(len(group))
        for i in range(n):
            g = best[i]
            if not tp[i] and ioa[i, g] >= iou_thr:
                in_group[i] = True
                top[g] = max(top[g], det_scores[i])
        group_scores = top[top > 0]
    keep = ~in_group
    return (np.concatenate([det_scores[keep], group_scores]),
            np.concatenate([tp[keep].astype(float), np.full(len(group_scores), float(group_weight))]))


def evaluate_loop(boxes, labels, predictions, *, classes=None, hierarchy=None, iou_threshold: float = 0.5,
                  group_of_weight: float = 1.0) -> dict:
    """Same inputs and output as ``oid_eval.evaluate``."""
    gt_boxes, gt_labels, preds, class_names = _load_inputs(boxes, labels, predictions, classes, hierarchy)
    for df in (gt_boxes, gt_labels, preds):                 # plain strings: a loop indexes them row by row
        for c in ("ImageID", "LabelName"):
            df[c] = np.asarray(df[c], dtype=object)
    n_gt = {c: 0.0 for c in class_names}
    gt_by_image = {}
    for img, df in gt_boxes.groupby("ImageID", sort=True):
        box = df[["XMin", "YMin", "XMax", "YMax"]].to_numpy(np.float64)
        group = df["IsGroupOf"].to_numpy() != 0
        lab = df["LabelName"].to_numpy(str)
        gt_by_image[img] = (box, group, lab)
        for c, g in zip(lab, group):
            n_gt[c] += group_of_weight if g else 1.0
    verified = {img: set(df["LabelName"]) for img, df in gt_labels.groupby("ImageID", sort=True)}
    scores = {c: [] for c in class_names}
    tps = {c: [] for c in class_names}
    for img, df in preds.groupby("ImageID", sort=True):
        box_gt, group_gt, lab_gt = gt_by_image.get(img, (np.zeros((0, 4)), np.zeros(0, bool), np.zeros(0, str)))
        allowed = verified.get(img, set()) | set(lab_gt)
        df = df[df["LabelName"].isin(allowed) & (df["YMin"] < df["YMax"]) & (df["XMin"] < df["XMax"])]
        det_lab = df["LabelName"].to_numpy(str)
        det_box = df[["XMin", "YMin", "XMax", "YMax"]].to_numpy(np.float64)
        det_score = df["Score"].to_numpy(np.float64)
        for c in dict.fromkeys(det_lab):
            sel, gsel = det_lab == c, lab_gt == c
            s, t = _image_class(det_box[sel], det_score[sel], box_gt[gsel], group_gt[gsel], iou_threshold,
                                group_of_weight)
            scores[c].append(s)
            tps[c].append(t)
    out, aps = {}, []
    for c in class_names:
        if n_gt[c] == 0:
            aps.append(np.nan)
            continue
        s = np.concatenate(scores[c]) if scores[c] else np.zeros(0)
        t = np.concatenate(tps[c]) if tps[c] else np.zeros(0)
        t = t[_desc(s)]
        ctp = np.cumsum(t)
        cfp = np.cumsum((t <= 0).astype(float))
        aps.append(ap_all_points(ctp / n_gt[c], ctp / (ctp + cfp)))
    out[map_key(iou_threshold)] = float(np.nanmean(aps)) if not np.all(np.isnan(aps)) else float("nan")
    for c, a in zip(class_names, aps):
        out[ap_key(c, iou_threshold)] = float(a)
    return out


def random_case(n_images: int, n_classes: int, seed: int = 0, dets_per_image: int = 40, gt_per_image: int = 6,
                tie_fraction: float = 0.2):
    """(boxes, labels, predictions, classes) DataFrames in the official columns, built to exercise every rule:
    group-of boxes, verified negatives and unverified classes, near-duplicate detections, scores with ties
    (a share of scores rounded to one decimal), zero scores, invalid boxes. For tests and benchmarks."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    classes = [f"/m/c{k:04d}" for k in range(n_classes)]
    pop = rng.zipf(1.3, size=n_classes * 4) % n_classes          # a long tail of class frequencies
    rows_b, rows_l, rows_p = [], [], []
    for i in range(n_images):
        img = f"img{i:06d}"
        present = np.unique(rng.choice(pop, size=max(1, rng.poisson(2)), replace=True))
        gts = []
        for _ in range(rng.poisson(gt_per_image) + 1):
            c = int(rng.choice(present))
            x0, y0 = rng.uniform(0, 0.8, 2)
            w, h = rng.uniform(0.05, 0.5, 2)
            box = (x0, min(1.0, x0 + w), y0, min(1.0, y0 + h))
            group = int(rng.random() < 0.15)
            gts.append((c, box))
            rows_b.append((img, classes[c], *box, group))
        for c in present:
            rows_l.append((img, classes[c], 1))
        for c in rng.choice(n_classes, size=rng.integers(0, 4), replace=False):
            if c not in present:
                rows_l.append((img, classes[int(c)], 0))          # verified negative
        for _ in range(rng.poisson(dets_per_image)):
            if gts and rng.random() < 0.6:                          # near a GT box, maybe the wrong class
                c, (x0, x1, y0, y1) = gts[rng.integers(len(gts))]
                if rng.random() < 0.2:
                    c = int(rng.integers(n_classes))
                j = rng.normal(0, 0.03, 4)
                box = (x0 + j[0], x1 + j[1], y0 + j[2], y1 + j[3])
            else:
                c = int(rng.integers(n_classes))
                x0, y0 = rng.uniform(-0.05, 0.9, 2)
                w, h = rng.uniform(-0.02, 0.4, 2)                  # a few invalid (inverted) boxes
                box = (x0, x0 + w, y0, y0 + h)
            s = float(rng.random())
            if rng.random() < tie_fraction:
                s = round(s, 1)                                     # ties, and some zeros
            rows_p.append((img, classes[c], s, *box))
    boxes = pd.DataFrame(rows_b, columns=["ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax", "IsGroupOf"])
    labels = pd.DataFrame(rows_l, columns=["ImageID", "LabelName", "Confidence"])
    preds = pd.DataFrame(rows_p, columns=["ImageID", "LabelName", "Score", "XMin", "XMax", "YMin", "YMax"])
    return boxes, labels, preds.sample(frac=1.0, random_state=seed).reset_index(drop=True), classes
