"""Train BSN++ (or BMN and the ablations, by config), then evaluate with the official protocol.

    cd bsnpp && python train.py                             # embedded toy data (configs/toy.yaml is implied)
    python train.py --config configs/activitynet.yaml --data-root /datasets/activitynet
    torchrun --nproc_per_node 8 train.py --config configs/activitynet.yaml --data-root ...

Reading order: distributed init and run folder, data (bad feature files reported and skipped
before any epoch), model and loss, optimizer and schedule (BMN's recipe), resume, the epoch loop
(train, validation loss, AR@AN/AUC every --eval-every epochs, atomic checkpoint), final
evaluation: proposals.json, results.json and the AR-AN plot in the run folder.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import time

import torch
from torch.utils.data import DataLoader

from bsnpp import build
from bsnpp.engine import rng_isolated, train_one_epoch, validation_loss
from bsnpp.eval import evaluate_split, format_metrics, ground_truth_from_records, random_baseline, _scalar_metrics
from shared import checkpoint as ckpt_lib
from shared import config, dist, log
from shared.device import resolve_device
from shared.metrics.activitynet import evaluate_proposals, parse_tiou_thresholds

logger = logging.getLogger("bsnpp")


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("BSN++ training", add_help=add_help)
    config.add_runtime_args(p)
    build.add_data_args(p)
    build.add_model_args(p)
    build.add_loss_args(p)
    build.add_post_args(p)
    build.add_optim_args(p)
    return p


def check_args(args):
    if args.epochs < 1 or args.batch_size < 1:
        raise ValueError("--epochs and --batch-size must be positive")
    if args.window and args.window < 8:
        raise ValueError("--window must be at least 8 snippets")
    parse_tiou_thresholds(args.tiou_thresholds)


def main(args):
    check_args(args)
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    run_dir, resume_from = config.resolve_run_dir(args, "bsnpp")
    log.setup_logging(run_dir)
    config.save_config(args, run_dir / "config.yaml")
    log.run_info(args, run_dir)
    dist.seed_everything(args.seed)
    amp = args.amp and device.type == "cuda"

    data = build.build_data(args)
    train_set, val_set = data["train"], data["val"]
    train_sampler = dist.build_sampler(train_set, shuffle=True, seed=args.seed, drop_last=True)
    val_sampler = dist.build_sampler(val_set, shuffle=False)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, sampler=train_sampler,
                              num_workers=args.workers, drop_last=True, pin_memory=device.type == "cuda",
                              persistent_workers=args.workers > 0)
    val_loader = DataLoader(val_set, batch_size=args.batch_size, sampler=val_sampler, num_workers=args.workers)
    if len(train_loader) == 0:
        raise ValueError(f"{len(train_set)} training items < batch size {args.batch_size} x {dist.world_size()} processes")

    model = build.build_model(args, data["channels"])
    criterion = build.build_criterion(args).to(device)
    # the BM layer's sampling tables are constant buffers (~35 MB at T = 100): not re-broadcast
    sync = args.sync_bn and device.type == "cuda"
    model = dist.wrap_model(model, device, sync_bn=sync, broadcast_buffers=not sync)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.lr_step, gamma=args.lr_gamma)
    logger.info("model: %.2fM parameters, %d train / %d val items, T=%d, C=%d",
                sum(p.numel() for p in model.parameters()) / 1e6, len(train_set), len(data["infer"]),
                args.window or args.temporal_scale, data["channels"])

    start_epoch, best = 0, {"AUC": -math.inf, "val_loss": math.inf}
    if resume_from is not None:
        state = ckpt_lib.resume(resume_from, model, optimizer, scheduler, map_location=device)
        start_epoch, best = state["epoch"] + 1, state.get("best", best)
        logger.info("resumed from %s at epoch %d", resume_from, start_epoch)
    writer = log.JsonlWriter(run_dir / "metrics.jsonl")
    tb = log.TensorBoard(run_dir)

    metrics, evaluated_final = None, False
    for epoch in range(start_epoch, args.epochs):
        t0 = time.perf_counter()
        dist.set_epoch(train_sampler, epoch)
        train_stats = train_one_epoch(model, criterion, train_loader, optimizer, device, epoch, amp=amp,
                                      clip_grad=args.clip_grad, print_freq=args.print_freq)
        scheduler.step()
        with rng_isolated(device):
            val_stats = validation_loss(model, criterion, val_loader, device, amp=amp)
        record = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
                  **{f"train_{k}": v for k, v in train_stats.items()},
                  **{f"val_{k}": v for k, v in val_stats.items()}}
        last = epoch == args.epochs - 1
        if last or (args.eval_every and (epoch + 1) % args.eval_every == 0):
            with rng_isolated(device):
                metrics = evaluate_split(dist.unwrap(model), data, device, args, run_dir if last else None, amp=amp)
            evaluated_final = last
            if dist.is_main():
                record.update({f"val_{k}": v for k, v in metrics.items()})
        record["seconds"] = time.perf_counter() - t0
        if dist.is_main():
            writer.write(record)
            tb.scalars(record, epoch)
            logger.info("epoch %d: loss %.4f val %.4f%s (%.0fs)", epoch, train_stats["total"], val_stats["total"],
                        f" AR@100 {record['val_AR@100']:.2f} AUC {record['val_AUC']:.2f}" if "val_AUC" in record else "",
                        record["seconds"])
        is_best = False
        if "val_AUC" in record:
            is_best = record["val_AUC"] > best["AUC"]
            best["AUC"] = max(best["AUC"], record["val_AUC"])
        best = dist.broadcast_object(best)
        is_best = dist.broadcast_object(is_best)
        state = ckpt_lib.training_state(model, optimizer, scheduler, epoch=epoch, args=args, best=best)
        ckpt_lib.save_checkpoint(state, run_dir / "checkpoint_last.pt")
        if is_best:
            ckpt_lib.save_checkpoint(state, run_dir / "checkpoint_best.pt")
        dist.barrier()

    if not evaluated_final:  # resumed after the last epoch: evaluate the final weights once more
        with rng_isolated(device):
            metrics = evaluate_split(dist.unwrap(model), data, device, args, run_dir, amp=amp)
    if dist.is_main():
        gt = ground_truth_from_records(data["val_records"], args.val_subset)
        baseline = _scalar_metrics(evaluate_proposals(
            gt, random_baseline(gt, n=args.max_avg_nr_proposals, seed=args.seed), subset=args.val_subset,
            max_avg_nr_proposals=args.max_avg_nr_proposals, tiou_thresholds=parse_tiou_thresholds(args.tiou_thresholds)))
        results = {"dataset": "thumos14" if args.window else "anet", "config": config.config_name(args),
                   "run_dir": str(run_dir), "epochs": args.epochs, "metrics": metrics,
                   "baseline_random": baseline, "data_report": {
                       "train": data["train_report"].to_dict(), "val": data["val_report"].to_dict()}}
        (run_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
        print(format_metrics(metrics, baseline, f"ours ({config.config_name(args)})"))
        print(f"results: {run_dir / 'results.json'}\nproposals: {run_dir / 'proposals.json'}\n"
              f"AR-AN plot: {run_dir / 'ar_an.png'}")
    tb.close()
    dist.cleanup()
    return run_dir, metrics


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
