"""The whole two-stage localization pipeline (report Sec. 2-3), in reading order:

1. proposals: one or more proposal files in ActivityNet's submission JSON. Without --proposals on
   the toy data, the newest bsnpp toy runs of --bsnpp-configs are reused, and the missing ones are
   trained first by running bsnpp's own train.py (the two packages meet through files only);
2. ensemble: fuse them (union + Soft-NMS or score voting) and print AR@AN/AUC of every source and
   of the fusion, with their AR-AN curves in one plot;
3. video classifier: train on the snippet features (or take --video-scores, an external
   CUHK-style file) and print top-1/top-3 accuracy and video mAP;
4. detections: fused proposals x top-k classes -> the official detection JSON, evaluated with the
   official protocol, beside the top-1-label baseline.

Scored on the evaluated subset's videos that have features, as bsnpp scores (``--full-gt`` for
every video); the printed tables say which.

    cd actnet_challenge && python train.py          # toy data (configs/toy.yaml implied)
    python train.py --config configs/activitynet.yaml --data-root /datasets/activitynet \
        --proposals bsnpp_tsn.json bsnpp_i3d.json [--video-scores cuhk_anet17_pred.json]
"""
from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from actnet_challenge import build, detect, ensemble
from actnet_challenge.train_classifier import run_classifier
from shared import config, dist, log, run
from shared.device import resolve_device
from shared.formats.activitynet import write_submission
from shared.metrics.plots import plot_ar_an_compare

logger = logging.getLogger("actnet_challenge")


def get_args_parser(add_help=True):
    return build.get_args_parser("ActivityNet localization pipeline", add_help)


def toy_proposals(configs: list[str], output_dir) -> list[Path]:
    """Reuse the newest bsnpp toy run of each config; train the missing ones with bsnpp's script."""
    paths = []
    for cfg in configs:
        found = run.newest_run_checkpoint("bsnpp", cfg, required=False, output_dir=output_dir, name="proposals.json")
        if found is None:
            logger.info("no bsnpp run for %s: training it (bsnpp/train.py --config configs/%s.yaml)", cfg, cfg)
            subprocess.run([sys.executable, "train.py", "--config", f"configs/{cfg}.yaml", "--output-dir",
                            str(output_dir)], cwd=build.REPO_ROOT / "bsnpp", check=True)
            found = run.newest_run_checkpoint("bsnpp", cfg, output_dir=output_dir, name="proposals.json",
                                              hint=f"the bsnpp run of {cfg} wrote no proposals.json")
        paths.append(found)
    return paths


def source_names(paths) -> dict:
    """``source i: <run name>`` for each proposal file (its run's config folder when it has one)."""
    return {f"source {i + 1}: {Path(p).parents[1].name if len(Path(p).parents) > 1 else p}": p
            for i, p in enumerate(paths)}


def main(args):
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    if not args.proposals and not args.data_root and dist.is_main():
        args.proposals = [str(p) for p in toy_proposals(args.bsnpp_configs, args.output_dir)]
    args.proposals = dist.broadcast_object(args.proposals)
    if not args.proposals:
        raise ValueError("--proposals: give at least one proposal file (bsnpp/eval.py writes them)")
    run_dir, _ = run.resolve_run_dir(args, "actnet_challenge")
    log.setup_logging(run_dir)
    config.save_config(args, run_dir / "config.yaml")
    log.run_info(args, run_dir)
    dist.seed_everything(args.seed)
    gt_path, store = build.resolve_data(args)
    gt, scored_on = build.evaluation_ground_truth(gt_path, store, args)

    # The classifier is the only distributed stage (its training is sharded); ensembles and
    # detections are cheap file work, done on rank 0 after it, with no collective in between.
    results = {"sources": args.proposals, "scored_on": scored_on}
    if args.video_scores:
        scores_path = Path(args.video_scores)
        results["classifier"] = "external: " + str(scores_path)
    else:
        cls_metrics, scores_path = run_classifier(args, run_dir, device)
        results["classifier"] = cls_metrics
    if dist.is_main():
        fused = ensemble.ensemble_proposals(args.proposals, args.weights, args.ensemble, args.normalise,
                                            args.sigma, args.nms_threshold, args.top_k, args.vote_iou)
        fused_path = write_submission(fused, run_dir / "fused_proposals.json")
        named = {**source_names(args.proposals), f"fused ({args.ensemble})": fused}
        prop_text, results["proposals"], curves = ensemble.proposal_table(gt, named, args.val_subset, args.top_k,
                                                                          scored_on)
        plot_ar_an_compare(curves, run_dir / "ar_an_ensemble.png", title=f"proposal sources and their ensemble "
                           f"({args.val_subset})")
        print(prop_text)
        if isinstance(results["classifier"], dict):
            m = results["classifier"]
            print(f"video classifier ({args.val_subset}): top-1 {m['top1']:.2f}  top-3 {m['top3']:.2f}  "
                  f"mAP {m['mAP']:.2f}  (chance top-1 {m['chance_top1']:.2f})")
        dets = detect.assemble_detections(fused_path, scores_path, args.top_k_classes, args.proposal_exponent,
                                          args.class_exponent, args.per_class_nms, args.sigma, args.max_detections)
        write_submission(dets, run_dir / "detections.json")
        base = detect.top1_label_baseline(fused_path, scores_path, args.max_detections)
        write_submission(base, run_dir / "detections_top1_baseline.json")
        results["detections"] = {
            f"fused (top-{args.top_k_classes} classes x proposals)": detect.detection_metrics(gt, dets, args.val_subset),
            "top-1 label baseline": detect.detection_metrics(gt, base, args.val_subset)}
        print(detect.detection_table(results["detections"], scored_on))
        (run_dir / "results.json").write_text(json.dumps({"config": config.config_name(args), "seed": args.seed,
                                                          **results}, indent=2))
        print(f"results: {run_dir / 'results.json'}\ndetections: {run_dir / 'detections.json'}\n"
              f"AR-AN plot: {run_dir / 'ar_an_ensemble.png'}")
    dist.cleanup()
    return run_dir, results


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
