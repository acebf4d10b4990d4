"""Train CDGCNet (or the --no-cdgc baseline), then evaluate it on the validation split.

    cd cdgcnet && python train.py                          # toy data: toy-cdgc and toy-plain, side by side
    python train.py --config configs/cityscapes.yaml --data-root /datasets/cityscapes
    torchrun --nproc_per_node 8 train.py --config configs/cityscapes.yaml --data-root /datasets/cityscapes

Reading order: distributed init and run folder, data (every record checked before the first
iteration), model (SyncBN under DDP on CUDA), OHEM loss, SGD with the poly schedule, resume, the
iteration loop (metrics.jsonl every --log-period, checkpoint every --checkpoint-period, validation
mIoU every --eval-period), the final checkpoint, then the final evaluation: results.json in the run
folder with the mIoU beside the majority-class baseline. ``--compare cdgc plain`` trains one run per
arm (``runs/cdgcnet/<config>-<arm>/<timestamp>/``) and prints them side by side.
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import time

import torch
from torch.utils.data import DataLoader

from cdgcnet import build
from cdgcnet.engine import evaluate, train_step
from shared import checkpoint as ckpt_lib
from shared import config, dist, log, run
from shared.device import resolve_device, use_amp
from shared.rng import rng_isolated

logger = logging.getLogger("cdgcnet")


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("CDGCNet training", add_help=add_help)
    config.add_runtime_args(p, toy_config=build.TOY_CONFIG, train=True)
    return build.add_args(p)


def main(args):
    """Train one model, or one per --compare arm; returns {arm or None: (run_dir, results)}."""
    build.check_args(args)
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if not args.compare:
            return {None: train_one(args, device)}
        runs = {}
        for arm in args.compare:
            sub = copy.copy(args)
            sub.cdgc, sub.compare = build.ARMS[arm], []
            runs[arm] = train_one(sub, device, name=arm)
        if dist.is_main():
            print(format_runs({f"{arm} ({config.config_name(args)}-{arm})": r for arm, (_, r) in runs.items()}))
        return runs
    finally:
        dist.cleanup()


def format_runs(rows: dict) -> str:
    lines = [f"{'run':<28} {'mIoU':>7} {'aAcc':>7} {'majority-class mIoU':>20}"]
    for name, r in rows.items():
        lines.append(f"{name:<28} {r['miou']:7.2f} {r['aacc']:7.2f} {r['baseline_majority_miou']:20.2f}")
    return "\n".join(lines)


def train_one(args, device, name: str | None = None):
    run_dir, resume_from = run.resolve_run_dir(args, "cdgcnet", name=name)
    log.setup_logging(run_dir)
    config.save_config(args, run_dir / "config.yaml")
    log.run_info(args, run_dir)
    dist.seed_everything(args.seed)
    amp, eval_amp = use_amp(args, device), use_amp(args, device, evaluation=True)

    data = build.build_data(args)
    source, train_set = data["source"], data["train"]
    per = dist.per_process_batch(args.batch_size)
    sampler = dist.build_sampler(train_set, shuffle=True, seed=args.seed, drop_last=True)
    iters_per_epoch = len(sampler) // per
    if iters_per_epoch == 0:
        raise ValueError(f"--batch-size {args.batch_size}: larger than the {len(train_set)} training images")
    model = build.build_model(args, source.num_classes)
    logger.info("%s %s%s, %d classes, %.1fM parameters; %d training / %d validation images",
                args.backbone, "CDGC" if args.cdgc else "baseline (--no-cdgc)",
                f" (mask {args.mask}, K {args.knn}, {args.graph_layers} layers)" if args.cdgc else "",
                source.num_classes, sum(p.numel() for p in model.parameters()) / 1e6, len(train_set), len(data["val"]))
    model = dist.wrap_model(model, device, sync_bn=args.sync_bn)
    criterion = build.build_criterion(args)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda it: max(0.0, 1 - it / args.iters) ** args.poly_power)
    step, best = 0, {"miou": -1.0}
    if resume_from is not None:
        state = ckpt_lib.resume(resume_from, model, optimizer, scheduler, map_location=device)
        build.check_resume(state.get("args"), args, resume_from)
        step, best = state["step"], state.get("best", best)
        logger.info("resumed from %s at iteration %d", resume_from, step)
    baseline = build.majority_class(train_set)

    def validate():
        with rng_isolated(device):
            return evaluate(dist.unwrap(model), data["val"], device, mode=args.eval_mode, crop=args.crop_size,
                            stride=args.eval_stride, scales=args.scales, flip=args.flip, amp=eval_amp,
                            baseline_class=baseline, save_pred=None, workers=args.workers,
                            print_freq=args.print_freq, split=args.val_split)

    writer = log.JsonlWriter(run_dir / "metrics.jsonl")
    gen = torch.Generator().manual_seed(args.seed + dist.rank())  # loader seeds: not from the global RNG
    t0 = time.perf_counter()
    while step < args.iters:
        epoch = step // iters_per_epoch
        batches = build.epoch_batches(sampler, epoch, args.seed, per, start=step % iters_per_epoch)
        loader = DataLoader(train_set, batch_sampler=batches, num_workers=args.workers, generator=gen,
                            pin_memory=device.type == "cuda")
        model.train()
        meters = log.MetricLogger()
        total = min(len(batches), args.iters - step)
        for batch in meters.log_every(loader, args.print_freq, header=f"train it {step}/{args.iters}", total=total):
            images, labels = build.to_device(batch, device)
            terms = train_step(model, criterion, images, labels, optimizer, device, amp, args.clip_grad)
            scheduler.step()
            step += 1
            meters.update(**terms)
            if step % args.log_period == 0 or step == args.iters:
                writer.write({"iter": step, "epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
                              **{f"train_{k}": v for k, v in dist.reduce_dict(terms).items()},
                              "seconds": time.perf_counter() - t0})
            evaluated = args.eval_period and step % args.eval_period == 0 and step < args.iters
            if evaluated:
                res = validate()
                writer.write({"iter": step, "val_miou": res["miou"], "val_aacc": res["aacc"]})
                logger.info("iteration %d: val mIoU %.2f", step, res["miou"])
                model.train()
            if step % args.checkpoint_period == 0 or step == args.iters or evaluated:
                is_best = bool(evaluated and res["miou"] > best["miou"])
                if is_best:
                    best = {"miou": res["miou"], "iter": step}
                state = ckpt_lib.training_state(model, optimizer, scheduler, epoch=epoch, step=step, args=args,
                                                best=best)
                ckpt_lib.save_checkpoint(state, run_dir / "checkpoint_last.pt")
                if is_best:
                    ckpt_lib.save_checkpoint(state, run_dir / "checkpoint_best.pt")
                dist.barrier()
            if step >= args.iters:
                break

    res = validate()  # after the final checkpoint: a crash here loses no training
    results = {"run": run.run_name(args, name), "dataset": args.dataset, "data_root": args.data_root or "toy",
               "cdgc": args.cdgc, "mask": args.mask, "backbone": args.backbone, "iters": args.iters,
               "batch_size": args.batch_size, "seed": args.seed, "run_dir": str(run_dir),
               "train_seconds": time.perf_counter() - t0, **res}
    if dist.is_main():
        (run_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
        writer.write({"iter": step, "val_miou": res["miou"], "val_aacc": res["aacc"], "final": True})
        logger.info("%s: val mIoU %.2f (majority-class baseline %.2f), aAcc %.2f -> %s", results["run"], res["miou"],
                    res["baseline_majority_miou"], res["aacc"], run_dir / "results.json")
    return run_dir, results


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
