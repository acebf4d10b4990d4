"""Train BSN++ (or BMN and the ablations, by config), then evaluate with the official protocol.

    cd bsnpp && python train.py                             # embedded toy data (configs/toy.yaml is implied)
    python train.py --config configs/activitynet.yaml --data-root /datasets/activitynet
    torchrun --nproc_per_node 8 train.py --config configs/activitynet.yaml --data-root ...

Reading order: distributed init and run folder, data (bad feature files reported and skipped
before any epoch), the no-feature prior of the training set (a baseline), model and loss,
optimizer and schedule (BMN's recipe; `--batch-size` is the global batch, split over the
processes), resume, the epoch loop (train, validation loss, AR@AN/AUC every --eval-every epochs
in fp32 unless --eval-amp, atomic checkpoint), final evaluation beside the random and prior
baselines: proposals.json, results.json and the AR-AN plots in the run folder, written by rank 0
after the last collective.
"""
from __future__ import annotations

import argparse
import logging
import math
import time

import torch
from torch.utils.data import DataLoader

from bsnpp import build
from bsnpp.baselines import prior_maps
from bsnpp.engine import train_one_epoch, validation_loss
from bsnpp.eval import evaluate_baselines, evaluate_split, write_outputs
from shared import checkpoint as ckpt_lib
from shared import config, dist, log, run
from shared.device import resolve_device, use_amp
from shared.metrics.activitynet import parse_tiou_thresholds
from shared.rng import rng_isolated

logger = logging.getLogger("bsnpp")


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("BSN++ training", add_help=add_help)
    config.add_runtime_args(p, toy_config=build.TOY_CONFIG)
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
    run_dir, resume_from = run.resolve_run_dir(args, "bsnpp")
    log.setup_logging(run_dir)
    config.save_config(args, run_dir / "config.yaml")
    log.run_info(args, run_dir)
    dist.seed_everything(args.seed)
    amp, eval_amp = use_amp(args, device), use_amp(args, device, evaluation=True)
    batch = dist.per_process_batch(args.batch_size)  # the global batch (BMN: 16) over the processes

    data = build.build_data(args)
    train_set, val_set = data["train"], data["val"]
    prior = prior_maps(train_set)  # annotations only, identical on every rank
    train_sampler = dist.build_sampler(train_set, shuffle=True, seed=args.seed, drop_last=True)
    val_sampler = dist.build_sampler(val_set, shuffle=False)
    train_loader = DataLoader(train_set, batch_size=batch, sampler=train_sampler,
                              num_workers=args.workers, drop_last=True, pin_memory=device.type == "cuda",
                              persistent_workers=args.workers > 0)
    val_loader = DataLoader(val_set, batch_size=batch, sampler=val_sampler, num_workers=args.workers)
    if len(train_loader) == 0:
        raise ValueError(f"{len(train_set)} training items < the global batch --batch-size {args.batch_size}")

    model = build.build_model(args, data["channels"])
    criterion = build.build_criterion(args).to(device)
    # the BM layer's sampling tables are constant buffers (~35 MB at T = 100): not re-broadcast
    sync = args.sync_bn and device.type == "cuda"
    model = dist.wrap_model(model, device, sync_bn=sync, broadcast_buffers=not sync)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.lr_step, gamma=args.lr_gamma)
    logger.info("model: %.2fM parameters, %d train / %d val items, T=%d, C=%d, %d optimizer steps per epoch",
                sum(p.numel() for p in model.parameters()) / 1e6, len(train_set), len(data["infer"]),
                build.tscale(args), data["channels"], len(train_loader))

    start_epoch, best = 0, {"AUC": -math.inf, "val_loss": math.inf}
    if resume_from is not None:
        state = ckpt_lib.resume(resume_from, model, optimizer, scheduler, map_location=device)
        start_epoch, best = state["epoch"] + 1, state.get("best", best)
        logger.info("resumed from %s at epoch %d", resume_from, start_epoch)
    writer = log.JsonlWriter(run_dir / "metrics.jsonl")
    tb = log.TensorBoard(run_dir)

    evaluation = None
    for epoch in range(start_epoch, args.epochs):
        t0 = time.perf_counter()
        dist.set_epoch(train_sampler, epoch)
        train_stats = train_one_epoch(model, criterion, train_loader, optimizer, device, epoch, amp=amp,
                                      clip_grad=args.clip_grad, print_freq=args.print_freq)
        scheduler.step()
        with rng_isolated(device):
            val_stats = validation_loss(model, criterion, val_loader, device, amp=eval_amp)
        record = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "steps": len(train_loader),
                  **{f"train_{k}": v for k, v in train_stats.items()},
                  **{f"val_{k}": v for k, v in val_stats.items()}}
        if epoch == args.epochs - 1 or (args.eval_every and (epoch + 1) % args.eval_every == 0):
            with rng_isolated(device):  # every rank gets the same numbers: no broadcast needed
                evaluation = evaluate_split(dist.unwrap(model), data, device, args, amp=eval_amp)
            record.update({f"val_{k}": v for k, v in evaluation["metrics"].items()})
        record["seconds"] = time.perf_counter() - t0
        if dist.is_main():
            writer.write(record)
            tb.scalars(record, epoch)
            logger.info("epoch %d: loss %.4f val %.4f%s (%.0fs)", epoch, train_stats["total"], val_stats["total"],
                        f" AR@100 {record['val_AR@100']:.2f} AUC {record['val_AUC']:.2f}" if "val_AUC" in record else "",
                        record["seconds"])
        is_best = "val_AUC" in record and record["val_AUC"] > best["AUC"]
        if is_best:
            best["AUC"] = record["val_AUC"]
        state = ckpt_lib.training_state(model, optimizer, scheduler, epoch=epoch, args=args, best=best,
                                        prior={k: torch.from_numpy(v) for k, v in prior.items()})
        ckpt_lib.save_checkpoint(state, run_dir / "checkpoint_last.pt")
        if is_best:
            ckpt_lib.save_checkpoint(state, run_dir / "checkpoint_best.pt")

    if evaluation is None:  # resumed after the last epoch: evaluate the final weights once more
        with rng_isolated(device):
            evaluation = evaluate_split(dist.unwrap(model), data, device, args, amp=eval_amp)
    baselines = evaluate_baselines(data, prior, args)  # no collective: every rank, same numbers
    if dist.is_main():  # after the last collective: the other ranks only wait in cleanup
        write_outputs(run_dir, evaluation, baselines, f"ours ({config.config_name(args)})", args, {
            "run_dir": str(run_dir), "epochs": args.epochs, "seed": args.seed, "data_report": {
                "train": data["train_report"].to_dict(), "val": data["val_report"].to_dict()}})
    tb.close()
    dist.cleanup()
    return run_dir, evaluation["metrics"]


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
