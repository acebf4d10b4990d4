"""Re-assemble and re-evaluate the detections of the newest pipeline run (or of given files),
e.g. with another number of classes per video or other score exponents, without retraining.

    python eval.py --config configs/toy.yaml [--top-k-classes 3] [--class-exponent 0.5]
    python eval.py --proposals fused.json --video-scores cls.json --data-root /datasets/activitynet
"""
from __future__ import annotations

import json
from pathlib import Path

from actnet_challenge import detect
from actnet_challenge.train import get_args_parser
from actnet_challenge.train_classifier import resolve_data
from shared import config


def newest_run(args) -> Path:
    base = Path(args.output_dir) / "actnet_challenge" / config.config_name(args)
    runs = sorted(base.glob("*/fused_proposals.json"), reverse=True) if base.is_dir() else []
    if not runs:
        raise FileNotFoundError(f"no pipeline run under {base}: run make actnet_challenge-train first")
    return runs[0].parent


def main(args):
    gt_path, _ = resolve_data(args)
    if args.proposals and args.video_scores:
        proposals, scores, out_dir = Path(args.proposals[0]), Path(args.video_scores), Path.cwd()
    else:
        run = newest_run(args)
        proposals, scores, out_dir = run / "fused_proposals.json", run / "video_scores.json", run
        if args.video_scores:
            scores = Path(args.video_scores)
    dets = detect.assemble_detections(proposals, scores, args.top_k_classes, args.proposal_exponent,
                                      args.class_exponent, args.per_class_nms, args.sigma, args.max_detections)
    name = f"fused (top-{args.top_k_classes}, p^{args.proposal_exponent:g} c^{args.class_exponent:g})"
    metrics = {name: detect.detection_metrics(gt_path, dets, args.val_subset),
               "top-1 label baseline": detect.detection_metrics(
                   gt_path, detect.top1_label_baseline(proposals, scores, args.max_detections), args.val_subset)}
    print(detect.detection_table(metrics))
    out = out_dir / f"eval_top{args.top_k_classes}.json"
    out.write_text(json.dumps({"proposals": str(proposals), "video_scores": str(scores), "detections": metrics}, indent=2))
    print(f"results: {out}")
    return metrics


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
