"""Train a Mask / Faster R-CNN on LVIS with EQL (or a baseline loss), then evaluate with the LVIS protocol.

    cd eql && python train.py --config configs/toy.yaml        # toy data: sigmoid baseline and EQL side by side
    python train.py --config configs/lvis_v0.5_eql.yaml --data-root /datasets
    torchrun --nproc_per_node 8 train.py --config configs/lvis_v0.5_eql.yaml --data-root /datasets

Reading order: distributed init and run folder, data (annotation files and images checked before
any iteration), model and loss, SGD with warm-up and steps (the official 1x schedule), resume, the
iteration loop (log every --log-period, checkpoint every --checkpoint-period and before every
evaluation, LVIS evaluation every --eval-period, every rank taking part), final evaluation:
lvis_results.json, results.json in the run folder. --batch-size is the global batch.
``--compare sigmoid eql`` trains one model per loss (runs ``<config>[-<run-name>]-<loss>``) and
prints them side by side with a random-box baseline.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from eql import build
from eql.data import TrainingSampler, collate
from eql.engine import HEADLINE, evaluate_split, format_metrics, random_baseline, train_step
from eql.model import detector_param_groups
from shared import checkpoint as ckpt_lib
from shared import config, dist, log, run
from shared.device import resolve_device, use_amp
from shared.rng import rng_isolated

logger = logging.getLogger("eql")
HERE = Path(__file__).resolve().parent


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("EQL training", add_help=add_help)
    config.add_runtime_args(p, toy_config=HERE / "configs" / "toy.yaml")
    build.add_data_args(p)
    build.add_model_args(p)
    build.add_loss_args(p)
    build.add_optim_args(p)
    return p


def check_args(args):
    if args.iters < 1 or args.batch_size < 1:
        raise ValueError("--iters and --batch-size must be positive")
    if args.loss == "eql" and not 0 < args.eql_lambda < 1:
        raise ValueError("--eql-lambda is an image frequency threshold in (0, 1)")
    if args.repeat_threshold < 0:
        raise ValueError("--repeat-threshold must be >= 0")
    if len(args.anchor_sizes) != 5:
        raise ValueError("--anchor-sizes needs one size per FPN level (5)")


def main(args):
    """Train (one loss, or each of --compare); returns (run_dir, metrics) or {loss: (run_dir, metrics)}."""
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if not args.compare:
            return train_one(args, device)
        runs = {}
        for loss in args.compare:
            runs[loss] = train_one(build.compare_args(args, loss), device, quiet=True)
        if dist.is_main():
            rows = {f"{loss} ({run_dir.parent.name})": m["bbox"] for loss, (run_dir, m) in runs.items()}
            rows["random boxes (300 / image)"] = runs[args.compare[0]][1]["baseline_random"]
            print("\nbox AP on the validation split (LVIS protocol, percent):")
            print(format_metrics(rows, ("AP", "AP50", "APr", "APc", "APf")))
            for loss, (run_dir, _) in runs.items():
                print(f"{loss}: {run_dir / 'results.json'}")
        return runs
    finally:
        dist.cleanup()


def train_one(args, device, quiet: bool = False):
    check_args(args)
    run_dir, resume_from = run.resolve_run_dir(args, "eql", name=build.sub_run(args))
    log.setup_logging(run_dir)
    config.save_config(args, run_dir / "config.yaml")
    log.run_info(args, run_dir)
    dist.seed_everything(args.seed)
    amp, eval_amp = use_amp(args, device), use_amp(args, device, evaluation=True)

    data = build.build_data(args)
    train_set = data["train"]
    per_gpu = dist.per_process_batch(args.batch_size)   # --batch-size is the global batch (logged)
    model = build.build_model(args, data)
    model = dist.wrap_model(model, device, find_unused_parameters=args.find_unused_parameters)
    optimizer = torch.optim.SGD(detector_param_groups(model, args.weight_decay), lr=args.lr, momentum=args.momentum)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, build.lr_lambda(args))
    logger.info("%s %s, loss %s: %.1fM parameters, %d classes, %d training images (%s), %d val images",
                args.arch, args.backbone, args.loss, sum(p.numel() for p in model.parameters()) / 1e6,
                len(data["cat_ids"]), len(train_set),
                "uniform" if data["repeat_factors"] is None else
                f"repeat factors, t={args.repeat_threshold}: {data['repeat_factors'].sum():.0f} per pass",
                len(data["val"]))
    if args.batch_size != 16 and args.data_root:
        logger.warning("global batch %d: the official schedule (lr 0.02, 90k iterations, steps 60k / 80k) is for 16 "
                       "images; scale --lr by %g and the iterations / steps by %g (linear scaling rule, see README)",
                       args.batch_size, args.batch_size / 16, 16 / args.batch_size)

    start, best = 0, {"AP": -math.inf}
    if resume_from is not None:
        state = ckpt_lib.resume(resume_from, model, optimizer, scheduler, map_location=device)
        start, best = state["step"], state.get("best", best)
        logger.info("resumed from %s at iteration %d", resume_from, start)
    factors = data["repeat_factors"] if data["repeat_factors"] is not None else [1.0] * len(train_set)
    sampler = TrainingSampler(factors, seed=args.seed, rank=dist.rank(), world_size=dist.world_size(),
                              start=start * per_gpu)
    gen = torch.Generator().manual_seed(args.seed + dist.rank())     # worker seeds, not the global RNG
    loader = DataLoader(train_set, batch_size=per_gpu, sampler=sampler, num_workers=args.workers,
                        collate_fn=collate, pin_memory=device.type == "cuda", generator=gen,
                        persistent_workers=args.workers > 0)
    writer = log.JsonlWriter(run_dir / "metrics.jsonl")
    tb = log.TensorBoard(run_dir)

    model.train()
    meters = log.MetricLogger()
    data_iter = iter(loader)
    metrics, evaluated_final, t_start = None, False, time.perf_counter()
    for it in meters.log_every(range(start, args.iters), args.log_period, header=f"train {args.loss}",
                               total=args.iters - start):
        images, targets = next(data_iter)
        losses = train_step(model, images, targets, optimizer, device, it, amp=amp, clip_grad=args.clip_grad)
        scheduler.step()
        meters.update(**losses)
        done = it + 1
        if done % args.log_period == 0 or done == args.iters:
            record = {"iter": done, "lr": optimizer.param_groups[0]["lr"],
                      **{f"train_{k}": v for k, v in dist.reduce_dict({k: float(v) for k, v in losses.items()}).items()},
                      "seconds": time.perf_counter() - t_start}
            writer.write(record)
            tb.scalars(record, done)
        last = done == args.iters
        evaluated = bool(args.eval_period and done % args.eval_period == 0) or last
        if done % args.checkpoint_period == 0 or evaluated:
            # saved before evaluating: a failing evaluation loses no training, and --resume auto
            # continues from here (after the last iteration: evaluates again, trains nothing)
            state = ckpt_lib.training_state(model, optimizer, scheduler, epoch=0, step=done, args=args, best=best)
            ckpt_lib.save_checkpoint(state, run_dir / "checkpoint_last.pt")
            dist.barrier()
        if evaluated:
            metrics = _evaluate(model, data, device, args, run_dir if last else None, eval_amp, writer, done)
            evaluated_final = last
            model.train()
            if (metrics["bbox"]["AP"] or 0.0) > best["AP"]:      # the same decision on every rank
                best = {"AP": metrics["bbox"]["AP"] or 0.0, "iter": done}
                state["best"] = best
                ckpt_lib.save_checkpoint(state, run_dir / "checkpoint_last.pt")
                ckpt_lib.save_checkpoint(state, run_dir / "checkpoint_best.pt")
                dist.barrier()

    if not evaluated_final:  # resumed after the last iteration: evaluate the final weights
        metrics = _evaluate(model, data, device, args, run_dir, eval_amp, writer, args.iters)
    with rng_isolated(device):
        metrics["baseline_random"] = random_baseline(data, n=args.detections_per_img, seed=args.seed)
    if dist.is_main():
        results = {"dataset": args.dataset if args.data_root else "toy", "config": config.config_name(args),
                   "run_name": run.run_name(args, build.sub_run(args)), "loss": args.loss, "arch": args.arch,
                   "backbone": args.backbone, "iters": args.iters, "repeat_threshold": args.repeat_threshold,
                   "eql_lambda": args.eql_lambda if args.loss == "eql" else None, "run_dir": str(run_dir),
                   "metrics": metrics, "train_seconds": time.perf_counter() - t_start}
        (run_dir / "results.json").write_text(json.dumps(results, indent=2))
        if not quiet:
            rows = {f"{args.loss} (ours)": metrics["bbox"], "random boxes": metrics["baseline_random"]}
            print(format_metrics(rows, ("AP", "AP50", "APr", "APc", "APf")))
            if "segm" in metrics:
                print(format_metrics({f"{args.loss} mask AP": metrics["segm"]}, ("AP", "APr", "APc", "APf")))
            print(f"results: {run_dir / 'results.json'}\nLVIS results file: {run_dir / 'lvis_results.json'}")
    tb.close()
    return run_dir, metrics


def _evaluate(model, data, device, args, out_dir, amp, writer, done: int) -> dict:
    """Evaluate the current weights on the validation split (every rank takes part, nothing moves
    the training RNG) and log the headline metrics."""
    with rng_isolated(device):
        metrics = evaluate_split(dist.unwrap(model), data, device, args, out_dir, amp=amp)
    if dist.is_main():
        writer.write({"iter": done, **{f"val_bbox_{k}": metrics["bbox"][k] for k in HEADLINE},
                      **({f"val_segm_{k}": metrics["segm"][k] for k in HEADLINE} if "segm" in metrics else {})})
        logger.info("iteration %d: box AP %.2f (APr %.2f, APc %.2f, APf %.2f)", done,
                    *(metrics["bbox"][k] or 0.0 for k in ("AP", "APr", "APc", "APf")))
    return metrics


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
