"""A straightforward loop implementation of the LVIS protocol (the one ``eql.lvis_eval`` vectorises),
written the way lvis-api's ``LVISEval`` is organised: dictionaries per (image, category), one greedy
matching loop per IoU threshold and detection, one accumulation per category and area range.

It exists as the baseline of ``bench/bench_lvis_eval.py`` and as a second, independent statement
of the protocol that the tests compare the vectorised evaluator with on randomised cases (bbox and
segm). It is not meant for real use: it is as slow as lvis-api.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from eql.lvis_eval import AREA_RNG, FREQ_LBL, _box_polygon, _to_rle, load_gt
from shared.metrics.detection import COCO_IOU_THRS, COCO_REC_THRS, load_json


def evaluate_loop(gt, results, iou_type: str = "bbox", max_dets: int = 300) -> dict:
    from pycocotools import mask as mask_utils

    gt = load_gt(gt)
    dts = [dict(d) for d in load_json(results)]
    img_ids = sorted(im["id"] for im in gt["images"])
    imgs = {im["id"]: im for im in gt["images"]}
    cats = sorted(gt["categories"], key=lambda c: c["id"])
    cat_ids = [c["id"] for c in cats]
    cat_set = set(cat_ids)

    # results: top max_dets per image (stable), ids, areas
    by_img = defaultdict(list)
    for d in dts:
        by_img[d["image_id"]].append(d)
    limited = []
    for ds in by_img.values():
        if max_dets >= 0 and len(ds) > max_dets:
            ds = sorted(ds, key=lambda d: d["score"], reverse=True)[:max_dets]
        limited.extend(ds)
    box_results = bool(limited) and "bbox" in limited[0]
    for i, d in enumerate(limited):
        d["id"] = i + 1
        if box_results:
            d["area"] = d["bbox"][2] * d["bbox"][3]
            d.setdefault("segmentation", _box_polygon(d["bbox"]))
        else:
            d["area"] = float(mask_utils.area(d["segmentation"]))

    def usable(a):
        return a["category_id"] in cat_set and 0 < a["area"] < float("inf")

    gts_by_img = defaultdict(list)
    for a in gt["annotations"]:
        gts_by_img[a["image_id"]].append(a)
    dts_by_img = defaultdict(list)
    for d in limited:
        dts_by_img[d["image_id"]].append(d)

    gts, dtsd = defaultdict(list), defaultdict(list)
    positive = defaultdict(set)
    for im in img_ids:
        for a in gts_by_img[im]:
            if usable(a):
                gts[im, a["category_id"]].append(a)
                positive[im].add(a["category_id"])
    for im in img_ids:
        neg = set(imgs[im]["neg_category_ids"])
        for d in dts_by_img[im]:
            if usable(d) and (d["category_id"] in neg or d["category_id"] in positive[im]):
                dtsd[im, d["category_id"]].append(d)

    def iou(im, c, dt, gl):
        if iou_type == "bbox":
            return np.asarray(mask_utils.iou([d["bbox"] for d in dt], [g["bbox"] for g in gl], [0] * len(gl)))
        h, w = imgs[im]["height"], imgs[im]["width"]
        return np.asarray(mask_utils.iou([_to_rle(d["segmentation"], h, w) for d in dt],
                                         [_to_rle(g["segmentation"], h, w) for g in gl], [0] * len(gl)))

    thrs = COCO_IOU_THRS
    evals = {}
    for c in cat_ids:
        for ai, (lo, hi) in enumerate(AREA_RNG):
            for im in img_ids:
                gl, dl = gts[im, c], dtsd[im, c]
                if not gl and not dl:
                    continue
                ig = [1 if (g.get("ignore", 0) or g["area"] < lo or g["area"] > hi) else 0 for g in gl]
                gorder = sorted(range(len(gl)), key=lambda j: ig[j])
                gl2 = [gl[j] for j in gorder]
                ig2 = [ig[j] for j in gorder]
                dorder = sorted(range(len(dl)), key=lambda j: -dl[j]["score"])
                dl2 = [dl[j] for j in dorder]
                ious = iou(im, c, dl2, gl2) if gl2 and dl2 else np.zeros((len(dl2), len(gl2)))
                gm = np.zeros((len(thrs), len(gl2)))
                dm = np.zeros((len(thrs), len(dl2)))
                dig = np.zeros((len(thrs), len(dl2)), bool)
                for t, thr in enumerate(thrs):
                    for di in range(len(dl2)):
                        best, m = min(thr, 1 - 1e-10), -1
                        for gj in range(len(gl2)):
                            if gm[t, gj] > 0:
                                continue
                            if m > -1 and ig2[m] == 0 and ig2[gj] == 1:
                                break
                            if ious[di, gj] < best:
                                continue
                            best, m = ious[di, gj], gj
                        if m == -1:
                            continue
                        dig[t, di] = bool(ig2[m])
                        dm[t, di] = gl2[m]["id"]
                        gm[t, m] = dl2[di]["id"]
                nel = set(imgs[im]["not_exhaustive_category_ids"])
                for di, d in enumerate(dl2):
                    if d["area"] < lo or d["area"] > hi or d["category_id"] in nel:
                        for t in range(len(thrs)):
                            if dm[t, di] == 0:
                                dig[t, di] = True
                evals[c, ai, im] = ([d["score"] for d in dl2], dm, dig, np.asarray(ig2))

    n_k, n_a, n_t, n_r = len(cat_ids), len(AREA_RNG), len(thrs), len(COCO_REC_THRS)
    precision = -np.ones((n_t, n_r, n_k, n_a))
    recall = -np.ones((n_t, n_k, n_a))
    for k, c in enumerate(cat_ids):
        for ai in range(n_a):
            es = [evals[c, ai, im] for im in img_ids if (c, ai, im) in evals]
            if not es:
                continue
            scores = np.concatenate([np.asarray(e[0], np.float64) for e in es])
            order = np.argsort(-scores, kind="mergesort")
            dm = np.concatenate([e[1] for e in es], axis=1)[:, order]
            dig = np.concatenate([e[2] for e in es], axis=1)[:, order]
            n_gt = int(np.count_nonzero(np.concatenate([e[3] for e in es]) == 0))
            if n_gt == 0:
                continue
            tp = np.cumsum(np.logical_and(dm, ~dig), axis=1).astype(float)
            fp = np.cumsum(np.logical_and(~dm.astype(bool), ~dig), axis=1).astype(float)
            for t in range(n_t):
                rc = tp[t] / n_gt
                pr = list(tp[t] / (fp[t] + tp[t] + np.spacing(1)))
                recall[t, k, ai] = rc[-1] if len(rc) else 0
                for i in range(len(pr) - 1, 0, -1):
                    pr[i - 1] = max(pr[i - 1], pr[i])
                q = np.zeros(n_r)
                for r, idx in enumerate(np.searchsorted(rc, COCO_REC_THRS, side="left")):
                    if idx < len(pr):
                        q[r] = pr[idx]
                precision[t, :, k, ai] = q

    def mean(s):
        return float(np.mean(s[s > -1])) if np.any(s > -1) else -1.0

    groups = [[k for k, c in enumerate(cats) if c["frequency"] == g] for g in FREQ_LBL]
    res = {"AP": mean(precision[:, :, :, 0]), "AP50": mean(precision[0, :, :, 0]),
           "AP75": mean(precision[5, :, :, 0]), "APs": mean(precision[:, :, :, 1]),
           "APm": mean(precision[:, :, :, 2]), "APl": mean(precision[:, :, :, 3])}
    for g, lbl in zip(groups, ("APr", "APc", "APf")):
        res[lbl] = mean(precision[:, :, g, 0])
    res[f"AR@{max_dets}"] = mean(recall[:, :, 0])
    for ai, lbl in ((1, "s"), (2, "m"), (3, "l")):
        res[f"AR{lbl}@{max_dets}"] = mean(recall[:, :, ai])
    res["per_category_AP"] = {c: mean(precision[:, :, k, 0]) if np.any(precision[:, :, k, 0] > -1) else float("nan")
                              for k, c in enumerate(cat_ids)}
    res["precision"], res["recall"] = precision, recall
    return res


def synthetic_case(n_img: int = 40, n_cat: int = 12, seed: int = 0, dets_per_img: float = 40.0,
                   segm: bool = False, quirks: bool = True) -> tuple[dict, list]:
    """An LVIS-format (gt, results) pair built to provoke every rule: federated lists, not-exhaustive
    categories, images over 300 detections, tied scores, duplicates, GT areas on the range bounds,
    zero-area GT and detections, a GT ``ignore`` field and a GT with id 0 (``quirks``), categories
    without GT. With ``segm`` the detections carry RLE masks (polygons jittered from the GT)."""
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed)
    cat_ids = sorted(rng.choice(np.arange(1, 4 * n_cat), n_cat, replace=False).tolist())
    freq = rng.choice(list(FREQ_LBL), n_cat, p=[0.3, 0.4, 0.3])
    cats = [{"id": int(c), "name": f"c{c}", "synset": f"c{c}.n.01", "frequency": str(f),
             "image_count": int(rng.integers(1, 500)), "instance_count": 1} for c, f in zip(cat_ids, freq)]
    no_gt = set(rng.choice(cat_ids, max(1, n_cat // 6), replace=False).tolist())
    with_gt = [c for c in cat_ids if c not in no_gt]
    images, anns, dts = [], [], []
    aid = 0 if quirks else 1
    for i in range(n_img):
        img_id = int(7 + 5 * i + rng.integers(0, 3))
        W, H = int(rng.integers(160, 400)), int(rng.integers(160, 400))
        present = sorted(rng.choice(with_gt, min(len(with_gt), 1 + rng.poisson(1.5)), replace=False).tolist())
        absent = [c for c in cat_ids if c not in present]
        neg = sorted(rng.choice(absent, min(len(absent), rng.integers(0, 4)), replace=False).tolist())
        nel = sorted(rng.choice(present, min(len(present), int(rng.random() < 0.3)), replace=False).tolist())
        images.append({"id": img_id, "width": W, "height": H, "neg_category_ids": neg,
                       "not_exhaustive_category_ids": nel})
        gts = []
        for c in present:
            for _ in range(1 + rng.poisson(1.0)):
                side = float(np.exp(rng.uniform(np.log(6), np.log(min(W, H) * 0.8))))
                w, h = side * rng.uniform(0.6, 1.0), side * rng.uniform(0.6, 1.0)
                x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
                poly = [x, y, x + w, y, x + w * rng.uniform(0.5, 1), y + h, x, y + h * rng.uniform(0.5, 1)]
                rle = mask_utils.merge(mask_utils.frPyObjects([poly], H, W))
                area = float(mask_utils.area(rle))
                r = rng.random()
                if quirks and r < 0.04:
                    area = float(rng.choice([32 ** 2, 96 ** 2]))      # on a range bound
                elif quirks and r < 0.06:
                    area = 0.0                                        # dropped by get_ann_ids
                ann = {"id": aid, "image_id": img_id, "category_id": int(c),
                       "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)], "area": area,
                       "segmentation": [[round(v, 2) for v in poly]]}
                if quirks and rng.random() < 0.03:
                    ann["ignore"] = 1
                anns.append(ann)
                gts.append(ann)
                aid += 1 + int(rng.integers(0, 3))
        n_det = int(rng.poisson(dets_per_img)) + (340 if rng.random() < 0.1 else 0)
        for _ in range(n_det):
            r = rng.random()
            if gts and r < 0.5:
                g = gts[int(rng.integers(len(gts)))]
                x, y, w, h = g["bbox"]
                j = rng.normal(0, 0.08, 4) * [w, h, w, h]
                box = [x + j[0], y + j[1], max(w + j[2], 0.5), max(h + j[3], 0.5)]
                c = g["category_id"] if rng.random() < 0.8 else int(rng.choice(cat_ids))
            else:
                w, h = float(rng.uniform(4, W / 2)), float(rng.uniform(4, H / 2))
                box = [float(rng.uniform(0, W - w)), float(rng.uniform(0, H - h)), w, h]
                c = int(rng.choice(cat_ids))
            if quirks and rng.random() < 0.01:
                box[2] = 0.0                                          # zero-area detection
            score = round(float(rng.random()), 2)                     # coarse: many ties
            d = {"image_id": img_id, "category_id": c, "bbox": [round(v, 2) for v in box], "score": score}
            if segm:
                x, y, w, h = d["bbox"]
                poly = [x, y, x + w, y, x + w, y + h * rng.uniform(0.6, 1), x + w * rng.uniform(0, 0.5), y + h]
                rle = mask_utils.merge(mask_utils.frPyObjects([poly], H, W))
                rle["counts"] = rle["counts"].decode("ascii")
                d["segmentation"] = rle
            dts.append(d)
            if quirks and rng.random() < 0.05:
                dts.append(dict(d))                                   # exact duplicate
    order = rng.permutation(len(dts))
    dts = [dts[i] for i in order]
    gt = {"info": {}, "licenses": [], "images": images, "annotations": anns, "categories": cats}
    return gt, dts
