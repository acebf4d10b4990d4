"""Train AENet (any variant, by config) on CelebA-Spoof, then evaluate with the official metrics.

    cd celeba_spoof && python train.py                               # toy data (configs/toy.yaml): AENet_C,S,G and the baseline
    python train.py --config configs/aenet_csg.yaml --data-root /datasets/CelebA_Spoof --pretrained torchvision
    torchrun --nproc_per_node 8 train.py --config configs/aenet_csg.yaml --data-root ...

Reading order: distributed init, data (label lists read, box files and maps probed, problems
counted and logged before any epoch), then for each variant of --variants: the sub-run
``runs/celeba_spoof/<config>-<variant>/<timestamp>/``, model and loss, optimizer, resume, the
epoch loop (train, validation metrics every --eval-every epochs, atomic checkpoint), the final
evaluation on the test list with the threshold from validation and from test, results.json,
roc.png and scores.png. At the end the metrics table of every variant is printed. --batch-size
is the global batch; evaluation runs in fp32 unless --eval-amp.
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from celeba_spoof import build, report
from celeba_spoof.data import labels_array
from celeba_spoof.engine import score, train_one_epoch
from celeba_spoof.loss import PAPER_NAMES
from shared import checkpoint as ckpt_lib
from shared import config, dist, log, run
from shared.device import resolve_device, use_amp
from shared.rng import rng_isolated

logger = logging.getLogger("celeba_spoof")


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("AENet training", add_help=add_help)
    config.add_runtime_args(p, toy_config=build.TOY_CONFIG)
    build.add_data_args(p)
    build.add_model_args(p)
    build.add_loss_args(p)
    build.add_optim_args(p)
    return p


def check_args(args):
    if args.epochs < 1 or args.batch_size < 1:
        raise ValueError("--epochs and --batch-size must be positive")
    if not 0 <= args.val_fraction < 1:
        raise ValueError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    if args.input_size < 32:
        raise ValueError(f"--input-size {args.input_size} is too small for ResNet-18 (>= 32)")
    if args.resume not in ("", "auto") and len(args.variants) > 1:
        raise ValueError("--resume PATH needs a single --variants entry (use --resume auto for several)")
    if len(set(args.variants)) != len(args.variants):
        raise ValueError(f"--variants lists a variant twice: {args.variants}")


def loaders(args, data, device):
    """Training and evaluation loaders of `--batch-size / processes` images each (the global batch
    rule: the same optimizer steps per epoch for any number of processes)."""
    per_process = dist.per_process_batch(args.batch_size)
    train_set = build.dataset(args, data["train"], train=True)
    train_sampler = dist.build_sampler(train_set, shuffle=True, seed=args.seed, drop_last=True)
    train_loader = DataLoader(train_set, batch_size=per_process, sampler=train_sampler,
                              num_workers=args.workers, drop_last=True, pin_memory=device.type == "cuda",
                              persistent_workers=args.workers > 0)
    if len(train_loader) == 0:
        raise ValueError(f"{len(train_set)} training images < global batch {args.batch_size}")
    eval_loaders = {}
    for split in ("val", "test"):
        if data.get(split):
            ds = build.dataset(args, data[split], train=False)
            eval_loaders[split] = DataLoader(ds, batch_size=per_process, sampler=dist.build_sampler(ds, shuffle=False),
                                             num_workers=args.workers)
    return train_sampler, train_loader, eval_loaders


def evaluate(model, eval_loaders, data, device, args, splits=("val", "test")) -> dict | None:
    """Scores of the requested splits -> metrics (rank 0; None elsewhere); fp32 unless --eval-amp."""
    amp = use_amp(args, device, evaluation=True)
    with rng_isolated(device):
        scores = {s: score(model, eval_loaders[s], device, amp=amp) for s in splits if s in eval_loaders}
    if not dist.is_main():
        return None
    y = {s: labels_array(data[s]) for s in scores}
    if "test" in scores:
        res = report.evaluate_scores(scores["test"], y["test"], scores.get("val"), y.get("val"), args.fprs)
    else:
        res = {"val": report.flat(report.spoof_metrics(scores["val"], y["val"], tuple(args.fprs)))}
    res["_scores"] = scores
    return res


def train_variant(args, variant: str, data: dict, device) -> tuple[Path, dict | None]:
    args = copy.copy(args)
    args.variants = [variant]  # its config.yaml trains just this one
    run_dir, resume_from = run.resolve_run_dir(args, build.PAPER, name=variant)
    log.setup_logging(run_dir)
    config.save_config(args, run_dir / "config.yaml")
    log.run_info(args, run_dir)
    dist.seed_everything(args.seed)
    amp = use_amp(args, device)
    train_sampler, train_loader, eval_loaders = loaders(args, data, device)

    model = build.build_model(args, variant)
    criterion = build.build_criterion(args, variant)
    model = dist.wrap_model(model, device)
    optimizer, scheduler = build.build_optimizer(args, model)
    logger.info("%s (%s): terms %s, %.2fM parameters, %d train / %d val / %d test images, input %d",
                variant, PAPER_NAMES[variant], "+".join(criterion.terms), sum(p.numel() for p in model.parameters()) / 1e6,
                len(data["train"]), len(data.get("val", [])), len(data["test"]), args.input_size)

    start_epoch, best = 0, {"ACER": math.inf, "AUC": -math.inf, "epoch": -1}
    if resume_from is not None:
        state = ckpt_lib.resume(resume_from, model, optimizer, scheduler, map_location=device)
        start_epoch, best = state["epoch"] + 1, state.get("best", best)
        # the learning rate of the next epoch under the current --epochs / --sched (a run that is
        # extended follows the schedule of an uninterrupted run of the new length)
        for g, base, f in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
            g["lr"] = base * f(scheduler.last_epoch)
        logger.info("resumed from %s at epoch %d", resume_from, start_epoch)
    writer = log.JsonlWriter(run_dir / "metrics.jsonl")
    tb = log.TensorBoard(run_dir)

    for epoch in range(start_epoch, args.epochs):
        t0 = time.perf_counter()
        dist.set_epoch(train_sampler, epoch)
        stats = train_one_epoch(model, criterion, train_loader, optimizer, device, epoch, amp=amp,
                                clip_grad=args.clip_grad, print_freq=args.print_freq)
        scheduler.step()
        record = {"epoch": epoch, **{f"train_{k}": v for k, v in stats.items()}}
        is_best = False
        last = epoch == args.epochs - 1
        if "val" in eval_loaders and (last or (args.eval_every and (epoch + 1) % args.eval_every == 0)):
            res = evaluate(model, eval_loaders, data, device, args, splits=("val",))
            if dist.is_main():
                v = res["val"]
                record.update({f"val_{k}": v[k] for k in ("AUC", "EER", "APCER", "BPCER", "ACER")})
                is_best = (v["ACER"], -v["AUC"]) < (best["ACER"], -best["AUC"])
                if is_best:
                    best = {"ACER": v["ACER"], "AUC": v["AUC"], "epoch": epoch}
        record["seconds"] = time.perf_counter() - t0
        if dist.is_main():
            writer.write(record)
            tb.scalars(record, epoch)
            logger.info("%s epoch %d: loss %.4f%s (%.0fs)", variant, epoch, stats["total"],
                        f" | val AUC {record['val_AUC']:.4f} EER {record['val_EER']:.2f}% ACER {record['val_ACER']:.2f}%"
                        if "val_AUC" in record else "", record["seconds"])
        best, is_best = dist.broadcast_object((best, is_best))
        state = ckpt_lib.training_state(model, optimizer, scheduler, epoch=epoch, args=args, best=best,
                                        variant=variant)
        ckpt_lib.save_checkpoint(state, run_dir / "checkpoint_last.pt")
        if is_best:
            ckpt_lib.save_checkpoint(state, run_dir / "checkpoint_best.pt")
        dist.barrier()

    res = evaluate(model, eval_loaders, data, device, args)
    results = None
    if dist.is_main():
        scores = res.pop("_scores")
        thr = {k.split("@")[1]: res[k]["threshold"] for k in ("test@val", "test@test") if k in res}
        report.plot(scores["test"], labels_array(data["test"]), run_dir, f"{PAPER_NAMES[variant]} ({args.protocol} test)", thr)
        results = {"config": config.config_name(args), "variant": variant, "variant_name": PAPER_NAMES[variant],
                   "protocol": args.protocol, "run_dir": str(run_dir), "epochs": args.epochs,
                   "input_size": args.input_size, "toy": not args.data_root, "best_val": best,
                   "train_images": len(data["train"]), "global_batch": args.batch_size,
                   "headline": report.headline(res), "metrics": res,
                   "data_report": {k: v.to_dict() for k, v in data["reports"].items()},
                   "geometric_targets": _geo_note(args, data)}
        (run_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
        print(report.format_table([(PAPER_NAMES[variant], res)]))
        print(f"results: {run_dir / 'results.json'}\nplots: {run_dir / 'roc.png'}, {run_dir / 'scores.png'}")
    tb.close()
    dist.barrier()
    return run_dir, results


def _geo_note(args, data) -> str:
    rep = data["reports"]["train"]
    return (f"precomputed maps: {rep.depth_maps} depth / {rep.live} live, {rep.reflect_maps} reflection / "
            f"{rep.spoof} spoof training images; samples without a map are masked"
            + ("; spoof depth and live reflection targets are the paper's zeros" if args.geo_known_zeros else ""))


def main(args):
    check_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    log.setup_logging()
    data = build.build_data(args)
    main_rank = dist.is_main()
    outcome = {}
    try:
        for variant in args.variants:
            outcome[variant] = train_variant(args, variant, data, device)
    finally:
        dist.cleanup()
    if main_rank and len(outcome) > 1:
        rows = [(PAPER_NAMES[v], r["metrics"]) for v, (_, r) in outcome.items() if r]
        print(f"\n== {args.protocol} test, {len(rows)} variants ==")
        print(report.format_table(rows))
        for v, (d, _) in outcome.items():
            print(f"{v}: {d / 'results.json'}")
    return outcome


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
