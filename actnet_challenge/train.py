"""The whole two-stage localization pipeline (report Sec. 2-3), in reading order:

1. proposals: one or more proposal files in ActivityNet's submission JSON. Without --proposals on
   the toy data, the newest bsnpp toy runs of --bsnpp-configs are reused, and the missing ones are
   trained first by running bsnpp's own train.py (the two packages meet through files only);
2. ensemble: fuse them (union + Soft-NMS or score voting) and print AR@AN/AUC of every source and
   of the fusion;
3. video classifier: train on the snippet features (or take --video-scores, an external
   CUHK-style file) and print top-1/top-3 accuracy and video mAP;
4. detections: fused proposals x top-k classes -> the official detection JSON, evaluated with the
   official protocol, beside the top-1-label baseline.

    cd actnet_challenge && python train.py --config configs/toy.yaml
    python train.py --config configs/activitynet.yaml --data-root /datasets/activitynet \
        --proposals bsnpp_tsn.json bsnpp_i3d.json [--video-scores cuhk_anet17_pred.json]
"""
from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from pathlib import Path

from actnet_challenge import detect, ensemble
from actnet_challenge.train_classifier import add_classifier_args, add_data_args, resolve_data, run_classifier
from shared import config, dist, log
from shared.device import resolve_device

logger = logging.getLogger("actnet_challenge")
REPO_ROOT = Path(__file__).resolve().parents[1]


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("ActivityNet localization pipeline", add_help=add_help)
    config.add_runtime_args(p)
    add_data_args(p)
    g = p.add_argument_group("proposals and ensemble")
    g.add_argument("--proposals", nargs="*", default=[], help="proposal submission files (empty on toy data: bsnpp runs)")
    g.add_argument("--bsnpp-configs", nargs="+", default=["toy", "toy_bmn"], help="bsnpp configs whose runs provide the toy proposals")
    g.add_argument("--weights", nargs="+", type=float, default=None, help="one weight per proposal source")
    g.add_argument("--ensemble", default="union", choices=["union", "voting"], help="fusion method")
    g.add_argument("--normalise", default="max", choices=["max", "minmax", "rank", "none"], help="per-source score normalisation")
    g.add_argument("--sigma", type=float, default=0.4, help="Gaussian Soft-NMS sigma of the ensemble")
    g.add_argument("--nms-threshold", type=float, default=0.0, help="Soft-NMS decays only above this tIoU")
    g.add_argument("--vote-iou", type=float, default=0.7, help="tIoU of a match in score voting")
    g.add_argument("--top-k", type=int, default=100, help="fused proposals kept per video")
    add_classifier_args(p)
    g = p.add_argument_group("detections")
    g.add_argument("--video-scores", default="", help="external video-level scores (skip training the classifier)")
    g.add_argument("--top-k-classes", type=int, default=2, help="classes per video (BSN/BMN: 2)")
    g.add_argument("--proposal-exponent", type=float, default=1.0, help="a in score = p^a * c^b")
    g.add_argument("--class-exponent", type=float, default=1.0, help="b in score = p^a * c^b")
    g.add_argument("--per-class-nms", action=argparse.BooleanOptionalAction, default=False, help="Soft-NMS per class")
    g.add_argument("--max-detections", type=int, default=100, help="detections per video")
    return p


def newest_bsnpp_proposals(cfg: str) -> Path | None:
    base = REPO_ROOT / "runs" / "bsnpp" / cfg
    runs = sorted(base.glob("*/proposals.json"), reverse=True) if base.is_dir() else []
    return runs[0] if runs else None


def toy_proposals(configs: list[str]) -> list[Path]:
    """Reuse the newest bsnpp toy run of each config; train the missing ones with bsnpp's script."""
    paths = []
    for cfg in configs:
        found = newest_bsnpp_proposals(cfg)
        if found is None:
            logger.info("no bsnpp run for %s: training it (bsnpp/train.py --config configs/%s.yaml)", cfg, cfg)
            subprocess.run([sys.executable, "train.py", "--config", f"configs/{cfg}.yaml"],
                           cwd=REPO_ROOT / "bsnpp", check=True)
            found = newest_bsnpp_proposals(cfg)
            if found is None:
                raise FileNotFoundError(f"bsnpp run for {cfg} wrote no proposals.json")
        paths.append(found)
    return paths


def main(args):
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    if not args.proposals and not args.data_root and dist.is_main():
        args.proposals = [str(p) for p in toy_proposals(args.bsnpp_configs)]
    args.proposals = dist.broadcast_object(args.proposals)
    if not args.proposals:
        raise ValueError("--proposals: give at least one proposal file (bsnpp/eval.py writes them)")
    run_dir, _ = config.resolve_run_dir(args, "actnet_challenge")
    log.setup_logging(run_dir)
    config.save_config(args, run_dir / "config.yaml")
    log.run_info(args, run_dir)
    dist.seed_everything(args.seed)
    gt_path, _ = resolve_data(args)

    results = {"sources": args.proposals}
    fused_path = run_dir / "fused_proposals.json"
    if dist.is_main():
        fused = ensemble.ensemble_proposals(args.proposals, args.weights, args.ensemble, args.normalise,
                                            args.sigma, args.nms_threshold, args.top_k, args.vote_iou)
        fused_path.write_text(json.dumps(fused))
        named = {f"source {i + 1}: {Path(p).parents[1].name if len(Path(p).parents) > 1 else p}": p
                 for i, p in enumerate(args.proposals)}
        named[f"fused ({args.ensemble})"] = fused
        prop_text, results["proposals"] = ensemble.proposal_table(gt_path, named, args.val_subset, args.top_k)
        print(prop_text)
    dist.barrier()

    if args.video_scores:
        scores_path = Path(args.video_scores)
        results["classifier"] = "external: " + str(scores_path)
    else:
        cls_metrics, scores_path = run_classifier(args, run_dir, device)
        results["classifier"] = cls_metrics
        if dist.is_main():
            print(f"video classifier ({args.val_subset}): top-1 {cls_metrics['top1']:.2f}  top-3 {cls_metrics['top3']:.2f}  "
                  f"mAP {cls_metrics['mAP']:.2f}  (chance top-1 {cls_metrics['chance_top1']:.2f})")

    if dist.is_main():
        dets = detect.assemble_detections(fused_path, scores_path, args.top_k_classes, args.proposal_exponent,
                                          args.class_exponent, args.per_class_nms, args.sigma, args.max_detections)
        (run_dir / "detections.json").write_text(json.dumps(dets))
        base = detect.top1_label_baseline(fused_path, scores_path, args.max_detections)
        (run_dir / "detections_top1_baseline.json").write_text(json.dumps(base))
        results["detections"] = {
            f"fused (top-{args.top_k_classes} classes x proposals)": detect.detection_metrics(gt_path, dets, args.val_subset),
            "top-1 label baseline": detect.detection_metrics(gt_path, base, args.val_subset)}
        print(detect.detection_table(results["detections"]))
        (run_dir / "results.json").write_text(json.dumps({"config": config.config_name(args), **results}, indent=2))
        print(f"results: {run_dir / 'results.json'}\ndetections: {run_dir / 'detections.json'}")
    dist.cleanup()
    return run_dir, results


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
