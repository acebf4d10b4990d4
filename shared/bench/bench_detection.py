"""Benchmark: ``shared.metrics.detection.coco_evaluate`` vs pycocotools ``COCOeval`` (bbox, default params).

Usage::

    python shared/bench/bench_detection.py                  # generated case: 2,000 images x 80 categories
    python shared/bench/bench_detection.py --images 500 --cats 20 --seed 1
    python shared/bench/bench_detection.py --fixture        # shared/tests/fixtures/coco/medium

Both evaluators start from the same in-memory GT dict and detection list (pycocotools: ``COCO`` index +
``loadRes`` + evaluate + accumulate + summarize; ours: ``coco_evaluate``). Prints both wall times, the
ratio, and the max abs difference over the 12 stats and over the full precision / recall arrays.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import time
from pathlib import Path

import numpy as np

from shared.metrics.detection import coco_evaluate, load_json

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "coco" / "medium"


def generate(n_img: int, n_cat: int, seed: int = 0, gt_per_img: float = 7.0, dt_per_img: float = 60.0):
    """COCO-like synthetic case: boxes of log-uniform size, ~5% crowds, detections = jittered GT + clutter."""
    rng = np.random.default_rng(seed)
    cat_ids = sorted(rng.choice(np.arange(1, 10 * n_cat), n_cat, replace=False).tolist())
    images, anns, dts = [], [], []
    aid = 1
    for i in range(n_img):
        img_id = 100000 + 3 * i
        W, H = 640.0, 480.0
        images.append({"id": img_id, "width": W, "height": H})
        img_cats = rng.choice(cat_ids, size=min(n_cat, 1 + rng.poisson(2)), replace=False)
        n_gt = rng.poisson(gt_per_img)
        gt_boxes = []
        for _ in range(n_gt):
            c = int(rng.choice(img_cats))
            w, h = np.exp(rng.uniform(np.log(4), np.log(400), 2))
            x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
            box = [round(float(x), 2), round(float(y), 2), round(float(w), 2), round(float(h), 2)]
            anns.append({"id": aid, "image_id": img_id, "category_id": c, "bbox": box,
                         "area": round(float(w * h * rng.uniform(0.5, 1.0)), 2), "iscrowd": int(rng.random() < 0.05)})
            gt_boxes.append((c, box))
            aid += 1
        for _ in range(rng.poisson(dt_per_img)):
            if gt_boxes and rng.random() < 0.4:
                c, (x, y, w, h) = gt_boxes[int(rng.integers(len(gt_boxes)))]
                s = rng.normal(0, 0.1, 4)
                box = [x + s[0] * w, y + s[1] * h, w * np.exp(s[2]), h * np.exp(s[3])]
                if rng.random() < 0.2:
                    c = int(rng.choice(cat_ids))
            else:
                c = int(rng.choice(cat_ids))
                w, h = np.exp(rng.uniform(np.log(4), np.log(400), 2))
                box = [rng.uniform(0, W - w), rng.uniform(0, H - h), w, h]
            dts.append({"image_id": img_id, "category_id": c, "bbox": [round(float(v), 2) for v in box],
                        "score": round(float(rng.random()), 5)})
    gt = {"images": images, "annotations": anns, "categories": [{"id": c, "name": f"c{c}"} for c in cat_ids]}
    return gt, dts


def run_pycocotools(gt, dts):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO()
        g.dataset = gt
        g.createIndex()
        d = g.loadRes(dts)
        ev = COCOeval(g, d, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--cats", type=int, default=80)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fixture", action="store_true", help="use the medium reference fixture instead")
    ap.add_argument("--quick", action="store_true", help="a smaller generated case (500 images)")
    args = ap.parse_args()
    if args.quick:
        args.images = min(args.images, 500)
    if args.fixture:
        gt, dts = load_json(FIXTURE / "gt.json.gz"), load_json(FIXTURE / "dt.json.gz")
        name = "fixture coco/medium"
    else:
        gt, dts = generate(args.images, args.cats, args.seed)
        name = f"generated {args.images} images x {args.cats} categories (seed {args.seed})"
    gt_ref, dts_ref = copy.deepcopy(gt), copy.deepcopy(dts)  # pycocotools mutates its inputs
    print(f"{name}: {len(gt['annotations'])} GT, {len(dts)} detections")

    t0 = time.perf_counter()
    ours = coco_evaluate(gt, dts)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ev = run_pycocotools(gt_ref, dts_ref)
    t_ref = time.perf_counter() - t0

    d_stats = float(np.max(np.abs(np.asarray(ours["stats"]) - ev.stats)))
    d_prec = float(np.max(np.abs(ours["precision"] - ev.eval["precision"])))
    d_rec = float(np.max(np.abs(ours["recall"] - ev.eval["recall"])))
    print(f"pycocotools COCOeval : {t_ref:8.3f} s")
    print(f"coco_evaluate (ours) : {t_ours:8.3f} s")
    print(f"speed-up             : {t_ref / t_ours:8.2f} x")
    print(f"max |diff| stats     : {d_stats:.3e}")
    print(f"max |diff| precision : {d_prec:.3e}   recall: {d_rec:.3e}")
    print("AP = {:.6f}  AP50 = {:.6f}  AR100 = {:.6f}".format(ours["AP"], ours["AP50"], ours["AR100"]))


if __name__ == "__main__":
    main()
