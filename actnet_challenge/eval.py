"""Re-assemble and re-evaluate the detections of the newest pipeline run (or of given files), e.g.
with another number of classes per video or other score exponents, without retraining; or score
any detection file with the official protocol.

    python eval.py --config configs/toy.yaml [--top-k-classes 3] [--class-exponent 0.5]
    python eval.py --proposals fused.json --video-scores cls.json --data-root /datasets/activitynet
    python eval.py --detections detections.json [--data-root ...] [--full-gt]

Scored on the evaluated subset's videos with features unless --full-gt (the table says which).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from actnet_challenge import build, detect
from shared import config, run


def get_args_parser(add_help=True):
    p = build.get_args_parser("ActivityNet localization evaluation", add_help, train=False)
    p.add_argument("--detections", default="", help="score this detection file (ActivityNet JSON) as it is")
    p.add_argument("--out", default="", help="results JSON (default: beside the run or the detection file)")
    return p


def main(args: argparse.Namespace) -> dict:
    gt_path, store = build.resolve_data(args)
    gt, scored_on = build.evaluation_ground_truth(gt_path, store, args)
    if args.detections:
        path = Path(args.detections)
        metrics = {path.name: detect.detection_metrics(gt, path, args.val_subset)}
        out, inputs = Path(args.out) if args.out else path.with_name(f"{path.stem}_scores.json"), {"detections": str(path)}
    else:
        if args.proposals and args.video_scores:
            proposals, scores, out_dir = Path(args.proposals[0]), Path(args.video_scores), Path.cwd()
        else:
            fused = run.newest_run_checkpoint("actnet_challenge", run.run_name(args), output_dir=args.output_dir,
                                              name="fused_proposals.json", hint="run make actnet_challenge-train first")
            out_dir = fused.parent
            proposals, scores = fused, Path(args.video_scores) if args.video_scores else out_dir / "video_scores.json"
        dets = detect.assemble_detections(proposals, scores, args.top_k_classes, args.proposal_exponent,
                                          args.class_exponent, args.per_class_nms, args.sigma, args.max_detections)
        name = f"fused (top-{args.top_k_classes}, p^{args.proposal_exponent:g} c^{args.class_exponent:g})"
        metrics = {name: detect.detection_metrics(gt, dets, args.val_subset),
                   "top-1 label baseline": detect.detection_metrics(
                       gt, detect.top1_label_baseline(proposals, scores, args.max_detections), args.val_subset)}
        out = Path(args.out) if args.out else out_dir / f"eval_top{args.top_k_classes}.json"
        inputs = {"proposals": str(proposals), "video_scores": str(scores)}
    print(detect.detection_table(metrics, scored_on))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**inputs, "scored_on": scored_on, "detections": metrics}, indent=2))
    print(f"results: {out}")
    return metrics


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
