"""Speed of the vectorised Open Images Challenge metric against the loop organised as the official
evaluator (``oid_eval_loop.py``: per image, per class present, one detection at a time), on the same
randomised case in the same run; the two must give the same APs.

    python bench/bench_oid_eval.py [--quick] [--images N --classes C --seed S]

Default 5,000 images x 500 classes (``--quick``: 500 x 100). The case has group-of boxes, verified
negatives, near-duplicate detections, tied and zero scores and invalid boxes. Both sides read the same
DataFrames (CSV parsing is excluded). The last line is JSON ``{"max_abs_diff", "speed_ratio", ...}``.
"""
from __future__ import annotations

import argparse
import json
import math
import time

from openimages_det.oid_eval import evaluate
from openimages_det.oid_eval_loop import evaluate_loop, random_case


def _best_of(fn, repeat: int):
    best, out = math.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="500 images x 100 classes")
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--classes", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.quick:
        args.images, args.classes = 500, 100
    boxes, labels, preds, classes = random_case(args.images, args.classes, args.seed)
    print(f"case: {args.images} images x {args.classes} classes, {len(boxes)} boxes, {len(labels)} image labels, "
          f"{len(preds)} detections")
    t_vec, fast = _best_of(lambda: evaluate(boxes, labels, preds, classes=classes), 3)
    t_loop, slow = _best_of(lambda: evaluate_loop(boxes, labels, preds, classes=classes), 1)
    diff = max((abs(fast[k] - slow[k]) for k in fast if not (math.isnan(fast[k]) and math.isnan(slow[k]))),
               default=0.0)
    same_nan = all(math.isnan(fast[k]) == math.isnan(slow[k]) for k in fast)
    print(f"loop (official structure): {t_loop:.2f} s   vectorised: {t_vec:.3f} s   ratio {t_loop / t_vec:.1f}x   "
          f"max |AP diff| {diff:.3g}{'' if same_nan else '  (NaN pattern differs!)'}")
    res = {"images": args.images, "classes": args.classes, "detections": len(preds), "loop_s": t_loop,
           "vectorised_s": t_vec, "max_abs_diff": diff if same_nan else math.inf, "speed_ratio": t_loop / t_vec}
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
