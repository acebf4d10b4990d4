"""LVIS evaluation (box and mask AP), vectorised, with lvis-api ``LVISEval`` semantics exactly.

    python -m eql.lvis_eval --gt lvis_v1_val.json --results lvis_results.json --iou-type bbox
    from eql.lvis_eval import evaluate; evaluate(gt, results, iou_type="segm")

Built on ``shared.metrics.detection`` (box IoU, COCO greedy matching, 101-point AP); the federated
rules sit on top. Protocol (lvis-api 0.5.3 = GitHub head for bbox/segm: ``LVISResults``,
``LVISEval.evaluate / evaluate_img / accumulate / summarize``):

* Results: at most ``max_dets`` (300) detections per image, the highest scores (a stable sort, so
  ties keep file order), cut **before** any filtering. A detection's area is ``w * h`` of its box
  when the results carry boxes (the first result decides, as in ``LVISResults``), otherwise its
  mask area. Detections on images absent from the GT raise.
* Ground truth and detections are then restricted to the GT's categories and to ``0 < area``
  (``LVIS.get_ann_ids`` keeps ``area > 0 and area < inf``). No crowd regions; a GT ``ignore``
  field, if present, is honoured.
* Federated rule: per image, a detection of a category neither positive (has GT in the image) nor
  in ``neg_category_ids`` is dropped. Negative categories have no GT, so their detections are false
  positives. An unmatched detection of a category in ``not_exhaustive_category_ids`` is ignored.
* Matching: IoU thresholds 0.50:0.05:0.95; per (image, category), detections by descending score
  (stable), each takes the best unmatched non-ignored GT with IoU >= t (last one among equal IoUs),
  else the best ignored GT. GT outside the area range are ignored; unmatched detections outside it
  are ignored. Area bounds inclusive: all [0, 1e10], small [0, 32^2], medium [32^2, 96^2], large
  [96^2, 1e10] on the GT ``area`` field (the mask area in LVIS).
* Accumulation per category and area range over all images (image-id order, then a stable sort by
  score), COCO's 101-point interpolated precision. A category without non-ignored GT in a range is
  absent (-1) and left out of every mean: categories without GT are excluded everywhere.
* APr / APc / APf: means over the categories whose ``frequency`` is r / c / f. AR@300 and AR by
  area: mean of the final recall. Per-category AP: mean precision at area "all" (NaN without GT).
* Quirk kept: a GT with annotation id 0 never counts as matched (lvis-api stores matched ids and
  tests them for truth). Duplicate GT annotation ids raise (lvis-api silently keeps the last).

Categories are processed in chunks so that memory stays bounded on LVIS v1 val (20k images x
300 detections).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

import numpy as np

from shared.metrics.detection import (
    COCO_IOU_THRS,
    COCO_REC_THRS,
    _as_boxes,
    ap_coco_101,
    load_json,
    match_greedy_grouped,
    pairwise_iou_grouped,
)

__all__ = ["evaluate", "summarize_arrays", "top_per_image", "AREA_RNG", "AREA_LBL", "METRIC_NAMES", "LVISFormatError",
           "load_gt", "format_results"]

AREA_RNG = ((0 ** 2, 1e5 ** 2), (0 ** 2, 32 ** 2), (32 ** 2, 96 ** 2), (96 ** 2, 1e5 ** 2))
AREA_LBL = ("all", "small", "medium", "large")
FREQ_LBL = ("r", "c", "f")
METRIC_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf")


class LVISFormatError(ValueError):
    """An annotation or results file that does not follow the LVIS format (names the problem)."""


def load_gt(gt: Any) -> dict:
    gt = load_json(gt)
    if hasattr(gt, "dataset"):  # an lvis.LVIS object
        gt = gt.dataset
    if not isinstance(gt, dict) or not all(k in gt for k in ("images", "annotations", "categories")):
        raise LVISFormatError("ground truth must be an LVIS dict with 'images', 'annotations' and 'categories'")
    return gt


def _results_columns(results: Any, want_segm: bool = True) -> dict:
    """Detections as columns {image_id, category_id, score, bbox [N,4] or None, segmentation list or None}."""
    res = load_json(results)
    if hasattr(res, "dataset"):
        res = res.dataset["annotations"]
    if isinstance(res, dict) and "image_id" in res:  # already columns
        out = {k: res.get(k) for k in ("image_id", "category_id", "score", "bbox", "segmentation")}
        n = len(out["image_id"])
        for k in ("image_id", "category_id", "score"):
            out[k] = np.asarray(out[k]).reshape(-1)
            if len(out[k]) != n:
                raise LVISFormatError(f"results column {k!r} has {len(out[k])} entries, image_id has {n}")
        out["bbox"] = None if out["bbox"] is None else _as_boxes(out["bbox"])
        return out
    if not isinstance(res, list):
        raise LVISFormatError("results must be a list of {image_id, category_id, score, bbox/segmentation} dicts")
    has_box = bool(res) and "bbox" in res[0]
    try:
        if has_box:  # one pass, one conversion: the common case
            table = np.array([(d["image_id"], d["category_id"], d["score"], *d["bbox"]) for d in res], np.float64)
            table = table.reshape(len(res), 7)
        else:
            table = np.array([(d["image_id"], d["category_id"], d["score"]) for d in res], np.float64)
            table = table.reshape(len(res), 3)
    except (KeyError, TypeError, ValueError) as e:
        bad = next((i for i, d in enumerate(res) if not isinstance(d, dict) or not all(
            k in d for k in ("image_id", "category_id", "score")) or (has_box and len(d.get("bbox", ())) != 4)), None)
        raise LVISFormatError(f"result {bad}: every result needs image_id, category_id, score"
                              f"{' and a 4-number bbox (the first result has one)' if has_box else ''} "
                              f"({type(e).__name__}: {e})") from None
    out = {"image_id": table[:, 0].astype(np.int64), "category_id": table[:, 1].astype(np.int64),
           "score": table[:, 2], "bbox": table[:, 3:7] if has_box else None, "segmentation": None}
    if want_segm or not has_box:
        out["segmentation"] = [d.get("segmentation") for d in res]
    return out


def _index(sorted_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(sorted_ids) == 0:
        return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
    pos = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return pos, sorted_ids[pos] == ids


def top_per_image(img: np.ndarray, score: np.ndarray, max_dets: int) -> np.ndarray:
    """Indices kept by ``LVISResults.limit_dets_per_image``: per image the ``max_dets`` highest
    scores, ties in file order (Python's stable ``sorted(reverse=True)``)."""
    if max_dets < 0 or len(img) == 0:
        return np.arange(len(img))
    order = np.lexsort((np.arange(len(img)), -score, img))
    im = img[order]
    start = np.r_[True, im[1:] != im[:-1]]
    first = np.maximum.accumulate(np.where(start, np.arange(len(im)), 0))
    rank = np.arange(len(im)) - first
    return np.sort(order[rank < max_dets])


def _to_rle(segm, h: int, w: int):
    from pycocotools import mask as mask_utils
    if isinstance(segm, list):  # polygons: parts merged into one mask
        return mask_utils.merge(mask_utils.frPyObjects(segm, h, w))
    if isinstance(segm, dict) and isinstance(segm.get("counts"), list):  # uncompressed RLE
        return mask_utils.frPyObjects(segm, h, w)
    if isinstance(segm, dict) and "counts" in segm:
        return segm
    raise LVISFormatError(f"unsupported segmentation {type(segm).__name__}: polygons or RLE expected")


def _box_polygon(b) -> list:
    x1, y1, w, h = (float(v) for v in b)
    return [[x1, y1, x1, y1 + h, x1 + w, y1 + h, x1 + w, y1]]


def evaluate(gt: Any, results: Any, iou_type: str = "bbox", max_dets: int = 300, *, categories=None,
             chunk_dets: int = 400_000, return_arrays: bool = False) -> dict:
    """LVIS AP with lvis-api semantics (see the module docstring).

    ``gt``: path (.json / .json.gz), dict or ``lvis.LVIS``; ``results``: path, list of result dicts
    (``image_id``, ``category_id``, ``score``, ``bbox`` [x, y, w, h] and/or ``segmentation`` RLE) or
    a dict of columns. ``iou_type``: ``bbox`` or ``segm`` (masks through pycocotools RLE).

    Returns {AP, AP50, AP75, APs, APm, APl, APr, APc, APf, AR@300, ARs@300, ARm@300, ARl@300} as
    fractions, ``per_category_AP`` {category id: AP or NaN}, and with ``return_arrays`` the
    ``precision [T, R, K, A]`` and ``recall [T, K, A]`` arrays of ``LVISEval.eval``.

    ``categories``: evaluate only these category ids (the others stay -1 in the arrays, as
    categories without GT); a category's AP depends on its own detections and GT only, so the
    categories can be shared out (ranks of a distributed evaluation, ``eql.evaluation``) and the
    arrays put back together for ``summarize_arrays``. The per-image ``max_dets`` cut applies to
    the results given: cut before selecting categories (``top_per_image``).
    """
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    gt = load_gt(gt)
    cols = _results_columns(results, want_segm=iou_type == "segm")
    iou_thrs, rec_thrs = COCO_IOU_THRS, COCO_REC_THRS
    area_rng = np.asarray(AREA_RNG, np.float64)
    lo, hi = area_rng[:, 0][:, None], area_rng[:, 1][:, None]
    n_t, n_r, n_a = len(iou_thrs), len(rec_thrs), len(area_rng)

    # ---- images, categories and the federated per-image lists
    images = gt["images"]
    imgs = np.asarray(sorted(int(im["id"]) for im in images), np.int64)
    if len(np.unique(imgs)) != len(imgs):
        raise LVISFormatError("image ids must be unique")
    img_hw = {}
    neg_pairs, nel_pairs = [], []
    for im in images:
        for key, out in (("neg_category_ids", neg_pairs), ("not_exhaustive_category_ids", nel_pairs)):
            if key not in im:
                raise LVISFormatError(f"image {im['id']} has no {key!r} (not an LVIS annotation file?)")
            out.extend((int(im["id"]), int(c)) for c in im[key])
        img_hw[int(im["id"])] = (int(im.get("height", 0)), int(im.get("width", 0)))
    cat_list = sorted(gt["categories"], key=lambda c: c["id"])
    cats = np.asarray([int(c["id"]) for c in cat_list], np.int64)
    try:
        freq_of = np.asarray([FREQ_LBL.index(c["frequency"]) for c in cat_list], np.int64)
    except (KeyError, ValueError):
        raise LVISFormatError("every category needs 'frequency' in r / c / f") from None
    n_i, n_k = len(imgs), len(cats)

    def pair_keys(pairs):
        if not pairs:
            return np.zeros(0, np.int64)
        a = np.asarray(pairs, np.int64)
        ii, ok_i = _index(imgs, a[:, 0])
        kk, ok_k = _index(cats, a[:, 1])
        ok = ok_i & ok_k
        return np.unique(kk[ok] * n_i + ii[ok])

    neg_keys, nel_keys = pair_keys(neg_pairs), pair_keys(nel_pairs)

    # ---- ground truth: known images and categories, 0 < area < inf; order (category, image, file)
    anns = gt["annotations"]
    try:
        g_img = np.fromiter((a["image_id"] for a in anns), np.int64, len(anns))
        g_cat = np.fromiter((a["category_id"] for a in anns), np.int64, len(anns))
        g_area = np.fromiter((a["area"] for a in anns), np.float64, len(anns))
        g_id = np.fromiter((a["id"] for a in anns), np.int64, len(anns))
    except KeyError as e:
        raise LVISFormatError(f"every annotation needs image_id, category_id, area and id (missing {e})") from None
    if len(np.unique(g_id)) != len(g_id):
        raise LVISFormatError("annotation ids must be unique")
    g_ign = np.fromiter((bool(a.get("ignore", 0)) for a in anns), bool, len(anns))
    gi, gin = _index(imgs, g_img)
    gk, gkn = _index(cats, g_cat)
    wanted = np.ones(len(cats), bool) if categories is None else np.isin(cats, np.asarray(list(categories), np.int64))
    keep = np.nonzero(gin & gkn & wanted[gk] & (g_area > 0) & (g_area < np.inf))[0]
    order = keep[np.lexsort((keep, gi[keep], gk[keep]))]
    gi, gk, g_area, g_id, g_ign = gi[order], gk[order], g_area[order], g_id[order], g_ign[order]
    g_src = order                                              # index into gt["annotations"]
    g_key = gk * n_i + gi
    pos_keys = np.unique(g_key)

    # ---- detections: top max_dets per image first, then filters
    d_img_all = cols["image_id"].astype(np.int64)
    if len(d_img_all) and not _index(imgs, d_img_all)[1].all():
        bad = d_img_all[~_index(imgs, d_img_all)[1]][:5].tolist()
        raise LVISFormatError(f"results hold detections on images absent from the ground truth: {bad}")
    kept = top_per_image(d_img_all, cols["score"].astype(np.float64), max_dets)
    d_img, d_cat = d_img_all[kept], cols["category_id"].astype(np.int64)[kept]
    d_score = cols["score"].astype(np.float64)[kept]
    if cols["bbox"] is not None:
        d_box = cols["bbox"][kept]
        d_area = d_box[:, 2] * d_box[:, 3]
    else:
        if cols["segmentation"] is None:
            raise LVISFormatError("results have neither 'bbox' nor 'segmentation'")
        from pycocotools import mask as mask_utils
        d_box = None
        d_area = np.asarray([float(mask_utils.area(cols["segmentation"][j])) for j in kept], np.float64)
    if iou_type == "bbox" and d_box is None:
        raise LVISFormatError("iou_type='bbox' needs 'bbox' in the results")
    di, _ = _index(imgs, d_img)
    dk, dkn = _index(cats, d_cat)
    d_key = dk * n_i + di
    federated = np.isin(d_key, pos_keys) | np.isin(d_key, neg_keys)
    sel = np.nonzero(dkn & wanted[dk] & (d_area > 0) & (d_area < np.inf) & federated)[0]
    order = sel[np.lexsort((sel, -d_score[sel], di[sel], dk[sel]))]
    di, dk, d_score, d_area, d_key = di[order], dk[order], d_score[order], d_area[order], d_key[order]
    d_src = kept[order]                                        # index into the results
    d_box = d_box[order] if d_box is not None else None
    d_nel = np.isin(d_key, nel_keys)

    # ---- evaluate category chunks: IoU, greedy matching, accumulation
    precision = -np.ones((n_t, n_r, n_k, n_a))
    recall = -np.ones((n_t, n_k, n_a))
    g_ig_all = g_ign[None, :] | (g_area[None, :] < lo) | (g_area[None, :] > hi)     # [A, G]
    npig = np.zeros((n_k, n_a), np.int64)
    for a in range(n_a):
        npig[:, a] = np.bincount(gk[~g_ig_all[a]], minlength=n_k)
    d_cstart = np.searchsorted(dk, np.arange(n_k + 1))
    g_cstart = np.searchsorted(gk, np.arange(n_k + 1))
    gt_rle_cache: dict = {}
    k0 = 0
    while k0 < n_k:
        k1 = k0 + 1
        while k1 < n_k and d_cstart[k1 + 1] - d_cstart[k0] <= chunk_dets:
            k1 += 1
        ds, de, gs, ge = d_cstart[k0], d_cstart[k1], g_cstart[k0], g_cstart[k1]
        _evaluate_chunk(k0, k1, slice(ds, de), slice(gs, ge), d_key, g_key, d_box, d_score, d_area, d_nel, dk,
                        g_id, g_ig_all, npig, iou_type, gt, cols, d_src, g_src, img_hw, imgs, gt_rle_cache,
                        lo, hi, iou_thrs, rec_thrs, precision, recall)
        k0 = k1

    out = summarize_arrays(precision, recall, cats, freq_of, max_dets)
    if return_arrays:
        out.update(precision=precision, recall=recall, iou_thrs=iou_thrs, rec_thrs=rec_thrs, cat_ids=cats,
                   freq_of=freq_of, img_ids=imgs)
    return out


def summarize_arrays(precision: np.ndarray, recall: np.ndarray, cat_ids, freq_of, max_dets: int = 300) -> dict:
    """The metrics of ``evaluate`` from its arrays (``precision [T, R, K, A]``, ``recall [T, K, A]``,
    the sorted category ids and their frequency group 0 / 1 / 2 for r / c / f)."""
    out = _summarize(precision, recall, np.asarray(freq_of), COCO_IOU_THRS, max_dets)
    per_cat = {}
    for k, cid in enumerate(cat_ids):
        s = precision[:, :, k, 0]
        per_cat[int(cid)] = float(np.mean(s[s > -1])) if np.any(s > -1) else float("nan")
    out["per_category_AP"] = per_cat
    return out


def _evaluate_chunk(k0, k1, dsl, gsl, d_key, g_key, d_box, d_score, d_area, d_nel, dk, g_id, g_ig_all, npig,
                    iou_type, gt, cols, d_src, g_src, img_hw, imgs, gt_rle_cache, lo, hi, iou_thrs, rec_thrs,
                    precision, recall) -> None:
    dkey, gkey = d_key[dsl], g_key[gsl]
    keys = np.union1d(dkey, gkey)
    nd = np.searchsorted(dkey, keys, "right") - np.searchsorted(dkey, keys, "left")
    ng = np.searchsorted(gkey, keys, "right") - np.searchsorted(gkey, keys, "left")
    if iou_type == "bbox":
        anns = gt["annotations"]
        g_box = _as_boxes([anns[j]["bbox"] for j in g_src[gsl]])
        iou_flat = pairwise_iou_grouped(d_box[dsl], g_box, nd, ng, None, fmt="xywh")
    else:
        iou_flat = _segm_iou_flat(keys, nd, ng, dsl, gsl, gt, cols, d_src, g_src, d_box, img_hw, imgs, gt_rle_cache)
    g_ig = g_ig_all[:, gsl]
    match = match_greedy_grouped(iou_flat, nd, ng, g_ig, None, iou_thrs)              # [A, T, D]
    matched = match.dt_match >= 0
    gid = g_id[gsl]
    has_id = matched & (gid[np.maximum(match.dt_match, 0)] != 0) if len(gid) else matched
    d_out = (d_area[dsl][None, :] < lo) | (d_area[dsl][None, :] > hi) | d_nel[dsl][None, :]   # [A, D]
    d_ignore = match.dt_ignore | (~has_id & d_out[:, None, :])
    tps = has_id & ~d_ignore
    fps = ~has_id & ~d_ignore
    dk_c, score_c = dk[dsl], d_score[dsl]
    starts = np.searchsorted(dk_c, np.arange(k0, k1 + 1))
    for k in range(k0, k1):
        areas = np.nonzero(npig[k] > 0)[0]
        if len(areas) == 0:
            continue
        s, e = starts[k - k0], starts[k - k0 + 1]
        inds = np.argsort(-score_c[s:e], kind="mergesort") + s
        res = ap_coco_101(tps[areas][:, :, inds], fps[areas][:, :, inds], npig[k, areas][:, None], rec_thrs=rec_thrs)
        precision[:, :, k, areas] = res.precision.transpose(1, 2, 0)
        recall[:, k, areas] = res.recall.T


def _segm_iou_flat(keys, nd, ng, dsl, gsl, gt, cols, d_src, g_src, d_box, img_hw, imgs, cache) -> np.ndarray:
    """Mask IoU of every (detection, GT) pair within each (category, image) group, through
    pycocotools RLE (``maskUtils.iou``, iscrowd 0): one call per image over the chunk's detections and
    GT of that image, from which each group's block is cut."""
    from pycocotools import mask as mask_utils
    anns = gt["annotations"]
    segs = cols["segmentation"]
    n_i = len(imgs)
    d_off = dsl.start + np.concatenate([[0], np.cumsum(nd)[:-1]]) if len(nd) else np.zeros(0, np.int64)
    g_off = gsl.start + np.concatenate([[0], np.cumsum(ng)[:-1]]) if len(ng) else np.zeros(0, np.int64)
    pair_off = np.concatenate([[0], np.cumsum(nd * ng)]).astype(np.int64)
    out = np.zeros(int(pair_off[-1]), np.float64)
    active = np.nonzero((nd > 0) & (ng > 0))[0]
    img_of = keys[active] % n_i
    for ii in np.unique(img_of):
        groups = active[img_of == ii]
        h, w = img_hw[int(imgs[ii])]
        d_rows = np.concatenate([np.arange(d_off[g], d_off[g] + nd[g]) for g in groups])
        g_rows = np.concatenate([np.arange(g_off[g], g_off[g] + ng[g]) for g in groups])
        g_rles = []
        for j in g_src[g_rows]:
            if j not in cache:
                cache[j] = _to_rle(anns[j]["segmentation"], h, w)
            g_rles.append(cache[j])
        d_rles = [_to_rle(segs[d_src[r]] if segs is not None and segs[d_src[r]] is not None
                          else _box_polygon(d_box[r]), h, w) for r in d_rows]
        iou = np.asarray(mask_utils.iou(d_rles, g_rles, [0] * len(g_rles)), np.float64).reshape(len(d_rles), -1)
        r0 = c0 = 0
        for g in groups:
            out[pair_off[g]:pair_off[g + 1]] = iou[r0:r0 + nd[g], c0:c0 + ng[g]].reshape(-1)
            r0 += nd[g]
            c0 += ng[g]
    return out


def _summarize(precision, recall, freq_of, iou_thrs, max_dets) -> dict:
    """``LVISEval.summarize``: means over entries > -1 (-1 when there are none)."""
    def mean(s):
        return float(np.mean(s[s > -1])) if np.any(s > -1) else -1.0

    def ap(iou=None, area=0, group=None):
        s = precision
        if iou is not None:
            s = s[np.where(iou == iou_thrs)[0]]
        if group is not None:
            s = s[:, :, np.nonzero(freq_of == group)[0]]
        return mean(s[:, :, :, area])

    def ar(area=0):
        return mean(recall[:, :, area])

    out = {"AP": ap(), "AP50": ap(iou=0.50), "AP75": ap(iou=0.75), "APs": ap(area=1), "APm": ap(area=2),
           "APl": ap(area=3), "APr": ap(group=0), "APc": ap(group=1), "APf": ap(group=2)}
    out[f"AR@{max_dets}"] = ar()
    for i, lbl in ((1, "s"), (2, "m"), (3, "l")):
        out[f"AR{lbl}@{max_dets}"] = ar(i)
    return out


def format_results(res: dict, scale: float = 100.0) -> str:
    """One Markdown table row of the headline metrics (percent)."""
    keys = [k for k in res if k != "per_category_AP" and isinstance(res[k], float)]
    head = "| " + " | ".join(keys) + " |"
    return "\n".join([head, "|" + "---|" * len(keys),
                      "| " + " | ".join(f"{scale * res[k]:.2f}" if res[k] >= 0 else "—" for k in keys) + " |"])


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("LVIS evaluation (lvis-api semantics, vectorised)", add_help=add_help)
    p.add_argument("--gt", required=True, help="LVIS annotation file (e.g. lvis_v1_val.json)")
    p.add_argument("--results", required=True, help="results JSON: a list of {image_id, category_id, bbox, score[, segmentation]}")
    p.add_argument("--iou-type", default="bbox", choices=["bbox", "segm"], help="box or mask IoU")
    p.add_argument("--max-dets", type=int, default=300, help="detections kept per image (LVIS: 300)")
    p.add_argument("--out", default="", help="write the metrics (and per-category AP) to this JSON file")
    return p


def main(args) -> dict:
    t0 = time.perf_counter()
    res = evaluate(args.gt, args.results, iou_type=args.iou_type, max_dets=args.max_dets)
    print(format_results(res))
    print(f"({args.iou_type}, {len(res['per_category_AP'])} categories, {time.perf_counter() - t0:.1f} s)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in res.items()
                       if k != "per_category_AP"} | {"per_category_AP": {
                str(k): (None if math.isnan(v) else v) for k, v in res["per_category_AP"].items()}}, f, indent=1)
    return res


if __name__ == "__main__":
    try:
        main(get_args_parser().parse_args())
    except (LVISFormatError, FileNotFoundError, json.JSONDecodeError) as e:
        sys.exit(f"error: {e}")
