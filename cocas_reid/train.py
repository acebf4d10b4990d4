"""Train BC-Net (or a single-branch ablation) with ID + batch-hard triplet losses, then evaluate.

    cd cocas_reid && python train.py                     # toy: detector, then toy-bcnet, toy-bf, toy-cf
    python train.py --config configs/cocas_bcnet.yaml --data-root /datasets/cocas
    torchrun --nproc_per_node 4 train.py --config configs/cocas_bcnet.yaml --data-root /datasets/cocas
    python train.py --config configs/market_baseline.yaml --data-root /datasets/Market-1501-v15.09.15

Reading order: distributed init, data (lists parsed and checked before any epoch), the gallery's
clothes boxes (running the clothes detector first when the config needs it and no box file
exists), then for each entry of --branches: run folder `runs/cocas_reid/<config>-<bcnet|bf|cf>/
<timestamp>/`, model, loss, Adam with warm-up and steps, resume, the epoch loop (PK batches,
metrics.jsonl, atomic checkpoint), the final evaluation (fp32 unless --eval-amp) written as
results.json and features.npz, and the raw-pixel baseline beside it. At the end a table of every
run's mAP / rank-1 beside baseline_pixel_mAP is printed.
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import time

import numpy as np
import torch

from cocas_reid import build
from cocas_reid.detect_clothes import run_detection
from cocas_reid.engine import evaluate, extract, rank_metrics, train_one_epoch
from shared import checkpoint as ckpt_lib
from shared import config, dist, log, run
from shared.device import resolve_device, use_amp
from shared.rng import rng_isolated

logger = logging.getLogger("cocas_reid")


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("BC-Net training", add_help=add_help)
    config.add_runtime_args(p, toy_config=build.TOY_CONFIG)
    build.add_data_args(p)
    build.add_model_args(p)
    build.add_loss_args(p)
    build.add_optim_args(p)
    build.add_eval_args(p)
    build.add_detector_args(p)
    return p


def check_args(args):
    if args.epochs < 1:
        raise ValueError("--epochs must be positive")
    if args.resume not in ("", "auto") and len(args.branches) > 1:
        raise ValueError("--resume PATH needs a single --branches entry (use --resume auto for several)")
    if len(set(args.branches)) != len(args.branches):
        raise ValueError(f"--branches lists a branch twice: {args.branches}")
    if args.dataset == "market1501" and build.uses_clothes(args):
        raise ValueError("Market-1501 has no clothes templates: use --branches bf (configs/market_baseline.yaml)")


def eval_loaders(args, data, boxes) -> dict:
    clothes = build.uses_clothes(args)
    loaders = {"query": build.eval_loader(args, data, "query", "template" if clothes else "none"),
               "gallery": build.eval_loader(args, data, "gallery", "box" if clothes else "none", boxes)}
    if args.distance == "xqda":
        loaders["train"] = build.eval_loader(args, data, "train", "template" if clothes else "none")
    return loaders


def pixel_baseline(args, data) -> dict | None:
    """Raw 16 x 8 RGB pixels ranked with the Euclidean distance (rank 0; None elsewhere)."""
    qp = extract(lambda b: b["pixels"], build.pixel_loader(args, data, "query"))
    gp = extract(lambda b: b["pixels"], build.pixel_loader(args, data, "gallery"))
    if not dist.is_main():
        return None
    q, g = data.splits["query"], data.splits["gallery"]
    return rank_metrics(qp, gp, q.pids, g.pids, q.camids, g.camids, "euclidean", False, args.same_camera_rule)


def train_branch(args, branch: str, data, loaders, device, baseline) -> tuple:
    args = copy.copy(args)
    args.branches = [branch]
    run_dir, resume_from = run.resolve_run_dir(args, build.PAPER, name=build.RUN_NAMES[branch])
    log.setup_logging(run_dir)
    config.save_config(args, run_dir / "config.yaml")
    log.run_info(args, run_dir)
    dist.seed_everything(args.seed)
    model = build.build_model(args, branch, data.num_classes)
    sampler, loader = build.train_loader(args, data, model.needs_clothes, device)
    criterion = build.build_criterion(args)
    model = dist.wrap_model(model, device)
    optimizer, scheduler = build.build_optimizer(args, model)
    logger.info("%s (%s): %d training images of %d ids, %d batches/epoch, %.2fM parameters", run_dir.parent.name,
                branch, len(data.splits["train"]), data.num_classes, len(loader),
                sum(p.numel() for p in model.parameters()) / 1e6)
    start_epoch = 0
    if resume_from is not None:
        start_epoch = ckpt_lib.resume(resume_from, model, optimizer, scheduler, map_location=device)["epoch"] + 1
        logger.info("resumed from %s at epoch %d", resume_from, start_epoch)
    writer = log.JsonlWriter(run_dir / "metrics.jsonl")
    amp, eval_amp = use_amp(args, device), use_amp(args, device, evaluation=True)
    for epoch in range(start_epoch, args.epochs):
        t0 = time.perf_counter()
        sampler.set_epoch(epoch)
        stats = train_one_epoch(model, criterion, loader, optimizer, device, epoch, amp=amp,
                                clip_grad=args.clip_grad, print_freq=args.print_freq)
        scheduler.step()
        record = {"epoch": epoch, **{f"train_{k}": v for k, v in stats.items()}}
        if args.eval_every and (epoch + 1) % args.eval_every == 0 and epoch + 1 < args.epochs:
            with rng_isolated(device):
                res = evaluate(model, loaders, data, args, device, eval_amp)
            if res is not None:
                record.update({f"eval_{k}": res[0][k] for k in ("mAP", "rank1")})
        record["seconds"] = time.perf_counter() - t0
        writer.write(record)
        logger.info("%s epoch %d: loss %.4f%s (%.0fs)", branch, epoch, stats["total"],
                    f" | mAP {record['eval_mAP']:.2f} rank-1 {record['eval_rank1']:.2f}" if "eval_mAP" in record else "",
                    record["seconds"])
        state = ckpt_lib.training_state(model, optimizer, scheduler, epoch=epoch, args=args, branch=branch)
        ckpt_lib.save_checkpoint(state, run_dir / "checkpoint_last.pt")
        dist.barrier()

    res = evaluate(model, loaders, data, args, device, eval_amp)
    results = None
    if dist.is_main():
        metrics, feats = res
        np.savez(run_dir / "features.npz", **feats)
        results = {"config": config.config_name(args), "branch": branch, "run": run_dir.parent.name,
                   "dataset": args.dataset, "variant": args.variant, "toy": not args.data_root,
                   "clothes_source": args.clothes_source if branch != "bf" else None, "epochs": args.epochs, **metrics}
        if baseline is not None:
            results.update({"baseline_pixel_mAP": baseline["mAP"], "baseline_pixel_rank1": baseline["rank1"]})
        (run_dir / "results.json").write_text(json.dumps(results, indent=2))
        logger.info("%s: mAP %.2f rank-1 %.2f (%d valid queries)%s", run_dir.parent.name, metrics["mAP"],
                    metrics["rank1"], metrics["num_valid_query"],
                    f" | pixel baseline mAP {baseline['mAP']:.2f}" if baseline else "")
    dist.barrier()
    return run_dir, results


def summary(outcome: dict) -> str:
    lines = ["| run | mAP | rank-1 | rank-5 | mINP | baseline_pixel_mAP |", "|---|---|---|---|---|---|"]
    for _, r in outcome.values():
        if r:
            base = r.get("baseline_pixel_mAP")
            lines.append(f"| {r['run']} | {r['mAP']:.2f} | {r['rank1']:.2f} | {r['rank5']:.2f} | {r['mINP']:.2f} | "
                         f"{'—' if base is None else f'{base:.2f}'} |")
    return "\n".join(lines)


def main(args):
    check_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    log.setup_logging()
    main_rank = dist.is_main()
    outcome = {}
    try:
        data = build.build_data(args)
        logger.info("%s %s: %d train images (%d ids), %d queries, %d gallery images", args.dataset, data.root,
                    len(data.splits["train"]), data.num_classes, len(data.splits["query"]), len(data.splits["gallery"]))
        boxes = None
        if build.uses_clothes(args):
            if args.clothes_source == "detector" and not args.clothes_boxes and build.clothes_lib.newest_box_file(args) is None:
                args.clothes_boxes = str(run_detection(args, data, device))
            boxes = build.gallery_boxes(args, data)
        loaders = eval_loaders(args, data, boxes)
        baseline = pixel_baseline(args, data) if args.pixel_baseline else None
        for branch in args.branches:
            outcome[branch] = train_branch(args, branch, data, loaders, device, baseline)
    finally:
        dist.cleanup()
    if main_rank:
        print(summary(outcome))
        for run_dir, _ in outcome.values():
            print(f"results: {run_dir / 'results.json'}")
    return outcome


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
