"""Benchmark: the vectorised LVIS evaluator (``eql.lvis_eval.evaluate``) against a straightforward
loop implementation of the same protocol (``eql.lvis_eval_loop.evaluate_loop``, organised as
lvis-api's ``LVISEval``), on the same in-memory case, measured in the same run.

    python eql/bench/bench_lvis_eval.py                 # 2,000 images x 200 categories (lvis-api: 12-15 s)
    python eql/bench/bench_lvis_eval.py --quick         # 500 images x 100 categories
    python eql/bench/bench_lvis_eval.py --iou-type segm --images 300

Prints both wall times, the ratio, and the largest difference over the metrics and the full
precision / recall arrays (0 expected).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from eql.lvis_eval import evaluate
from eql.lvis_eval_loop import evaluate_loop, synthetic_case


def get_args_parser():
    p = argparse.ArgumentParser("bench LVIS evaluation")
    p.add_argument("--images", type=int, default=2000, help="images in the generated case")
    p.add_argument("--cats", type=int, default=200, help="categories in the generated case")
    p.add_argument("--dets", type=float, default=60.0, help="mean detections per image (10% of images get 340 more)")
    p.add_argument("--iou-type", default="bbox", choices=["bbox", "segm"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="500 images x 100 categories (about a minute in all)")
    return p


def main(args):
    if args.quick:
        args.images, args.cats = 500, 100
    gt, dt = synthetic_case(args.images, args.cats, args.seed, dets_per_img=args.dets,
                            segm=args.iou_type == "segm", quirks=True)
    print(f"case: {len(gt['images'])} images, {len(gt['categories'])} categories, "
          f"{len(gt['annotations'])} GT, {len(dt)} detections, iou_type={args.iou_type}")
    t0 = time.perf_counter()
    ours = evaluate(gt, dt, iou_type=args.iou_type, return_arrays=True)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = evaluate_loop(gt, dt, iou_type=args.iou_type)
    t_ref = time.perf_counter() - t0
    diff = max(abs(ours[k] - ref[k]) for k in ours if isinstance(ours[k], float))
    diff = max(diff, float(np.abs(ours["precision"] - ref["precision"]).max()),
               float(np.abs(ours["recall"] - ref["recall"]).max()))
    print(f"loop reference: {t_ref:.2f} s   vectorised: {t_ours:.2f} s   ratio: {t_ref / t_ours:.1f}x   "
          f"max |diff|: {diff:.1e}   AP {100 * ours['AP']:.2f}")
    return t_ref / t_ours, diff


if __name__ == "__main__":
    main(get_args_parser().parse_args())
