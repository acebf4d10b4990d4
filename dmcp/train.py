"""Retrain a pruned network from scratch with the paper's recipe, then evaluate it.

    cd dmcp && python train.py                                           # toy: newest toy prune run's arch.json
    python train.py --config configs/resnet50_2.2g.yaml --arch ../runs/dmcp/resnet50_2.2g/<ts>/arch.json --data-root /datasets/imagenet
    torchrun --nproc_per_node 8 train.py --config configs/resnet50_2.2g.yaml --arch ... --data-root ...

Recipe (official config/*/retrain.yaml): SGD, Nesterov momentum 0.9, lr 0.2 warmed up linearly to
0.8 over 2 epochs then cosine to 0 (global batch 2048; scaled with --scale-lr), label smoothing
0.1, weight decay 1e-4 (ResNet) / 4e-5 (MobileNetV2) with none on BN and biases, 100 / 250 epochs.
The network is the plain torchvision model of arch.json, freshly initialised (`--retrain-init
inherit` starts from the supernet's weights in pruned.pt instead).

Reading order: distributed init and run folder (`runs/dmcp/<config>-retrain/<timestamp>/`), arch
and data, model (DDP), optimizer and schedule, resume, the epoch loop (train, evaluate every
--eval-every epochs in fp32 unless --eval-amp, atomic checkpoint holding the arch), final
evaluation, results.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import torch

from dmcp import build
from dmcp.data import build_datasets, build_loaders, skipped_images
from dmcp.engine import evaluate, param_groups, train_one_epoch, warmup_cosine
from dmcp.export import build_pruned
from shared import checkpoint as ckpt_lib
from shared import config, dist, log, run
from shared.device import resolve_device, use_amp
from shared.metrics.flops import count_madds, count_params
from shared.rng import rng_isolated

logger = logging.getLogger("dmcp")


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("DMCP retraining", add_help=add_help)
    build.add_all_args(p)
    p.add_argument("--arch", default="", help="arch.json written by prune.py; default: the newest prune run of this config")
    return p


def find_arch(args) -> Path:
    """--arch, else the arch.json of the newest prune run of this config."""
    if args.arch:
        return Path(args.arch)
    base = run.run_root("dmcp", run.run_name(args), args.output_dir)
    runs = sorted((p for p in base.glob("*") if (p / "arch.json").is_file()), reverse=True) if base.is_dir() else []
    if not runs:
        raise FileNotFoundError(f"no arch.json under {base}: run prune.py with this config first "
                                f"(make dmcp-prune) or pass --arch")
    return runs[0] / "arch.json"


def build_model(arch: dict, init: str, arch_path: Path | None) -> torch.nn.Module:
    model = build_pruned(arch)
    if init == "inherit":
        weights = (arch_path.parent / "pruned.pt") if arch_path else None
        if weights is None or not weights.is_file():
            raise FileNotFoundError(f"--retrain-init inherit: {weights} not found (written by prune.py)")
        model.load_state_dict(ckpt_lib.load_checkpoint(weights)["model"])
    return model


def retrain(args, arch: dict, run_dir: Path, device, data: dict | None = None, resume_from: Path | None = None,
            arch_path: Path | None = None) -> dict:
    """Train the pruned network of `arch` for --retrain-epochs and evaluate it; returns the final
    metrics (rank 0; every rank gets them). Checkpoints go to `run_dir`; a checkpoint to resume
    from must hold the same architecture."""
    amp, eval_amp = use_amp(args, device), use_amp(args, device, evaluation=True)
    if data is None:
        data = build_datasets(args)
    loaders = build_loaders(args, data, device)
    torch.manual_seed(args.seed)  # identical initialisation on every rank
    model = build_model(arch, args.retrain_init, arch_path)
    madds = count_madds(model, (1, 3, args.input_size, args.input_size))
    params = count_params(model)
    if madds != arch["madds"]:
        raise RuntimeError(f"the rebuilt network counts {madds:,} MAdds, arch.json says {arch['madds']:,}")
    dist.seed_everything(args.seed)
    model = dist.wrap_model(model, device)
    optimizer = torch.optim.SGD(param_groups(model, args.retrain_weight_decay), lr=args.retrain_lr,
                                momentum=args.momentum, nesterov=args.nesterov)
    spe = len(loaders["train"])
    total, warm = args.retrain_epochs * spe, int(round(args.retrain_warmup_epochs * spe))
    scale = build.lr_scale(args)

    def lr_fn(step):
        return scale * warmup_cosine(step, total, args.retrain_lr, args.retrain_warmup_lr, warm, args.retrain_min_lr)

    logger.info("retraining %s: %.2f MFLOPs, %.3fM parameters, %d epochs x %d steps, learning rates x %.4g",
                arch.get("builder", {}).get("family"), madds / 1e6, params / 1e6, args.retrain_epochs, spe, scale)
    start_epoch, step, best = 0, 0, {"top1": -math.inf}
    if resume_from is not None:
        held = ckpt_lib.load_checkpoint(resume_from).get("arch", {}).get("layers")
        if held != arch["layers"]:
            raise ckpt_lib.CheckpointError(f"{resume_from}: trains another architecture than {arch_path or 'this arch'}; "
                                           f"resume it with its own --arch, or start a fresh run")
        state = ckpt_lib.resume(resume_from, model, optimizer, map_location=device)
        start_epoch, step, best = state["epoch"] + 1, state["step"], state.get("best", best)
        logger.info("resumed retraining from %s at epoch %d", resume_from, start_epoch)
    writer = log.JsonlWriter(run_dir / "metrics.jsonl")
    metrics = None
    for epoch in range(start_epoch, args.retrain_epochs):
        t0 = time.perf_counter()
        dist.set_epoch(loaders["train_sampler"], epoch)
        stats, step = train_one_epoch(model, loaders["train"], optimizer, device, epoch, step, lr_fn,
                                      args.retrain_label_smoothing, amp, args.print_freq)
        record = {"epoch": epoch, **{f"train_{k}": v for k, v in stats.items()}}
        last = epoch == args.retrain_epochs - 1
        if last or (args.eval_every and (epoch + 1) % args.eval_every == 0):
            with rng_isolated(device):
                metrics = evaluate(model, loaders["val"], device, eval_amp)
            record.update({f"val_{k}": v for k, v in metrics.items()})
        record["skipped_images"] = int(sum(dist.all_gather_object(skipped_images(loaders))))
        record["seconds"] = time.perf_counter() - t0
        writer.write(record)
        logger.info("retrain epoch %d: loss %.4f%s (%.0fs)", epoch, stats["loss"],
                    f" top-1 {metrics['top1']:.2f} top-5 {metrics['top5']:.2f}" if "val_top1" in record else "",
                    record["seconds"])
        is_best = "val_top1" in record and record["val_top1"] > best["top1"]
        if is_best:
            best = {"top1": record["val_top1"], "epoch": epoch}
        state = ckpt_lib.training_state(model, optimizer, epoch=epoch, step=step, args=args, best=best, arch=arch)
        ckpt_lib.save_checkpoint(state, run_dir / "checkpoint_last.pt")
        if is_best:
            ckpt_lib.save_checkpoint(state, run_dir / "checkpoint_best.pt")
        dist.barrier()
    if metrics is None:  # resumed after the last epoch
        with rng_isolated(device):
            metrics = evaluate(model, loaders["val"], device, eval_amp)
    return {**metrics, "madds": madds, "params": params, "epochs": args.retrain_epochs, "best_top1": best["top1"]}


def main(args):
    build.check_args(args)
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    arch_path = find_arch(args)
    arch = build.load_arch(arch_path)
    run_dir, resume_from = run.resolve_run_dir(args, "dmcp", name="retrain")
    log.setup_logging(run_dir)
    config.save_config(args, run_dir / "config.yaml")
    log.run_info(args, run_dir)
    logger.info("arch: %s (%s, %.2f MFLOPs for a target of %.2f)", arch_path, arch.get("method"),
                arch["madds"] / 1e6, (arch.get("target_madds") or float("nan")) / 1e6)
    if dist.is_main():
        (run_dir / "arch.json").write_text(json.dumps(arch, indent=1))
    metrics = retrain(args, arch, run_dir, device, resume_from=resume_from, arch_path=arch_path)
    if dist.is_main():
        results = {"config": config.config_name(args), "kind": "retrain", "model": args.model,
                   "arch": str(arch_path), "method": arch.get("method"), "target_madds": arch.get("target_madds"),
                   **metrics, "run_dir": str(run_dir)}
        (run_dir / "results.json").write_text(json.dumps(results, indent=2))
        print(f"pruned {args.model}: {metrics['madds'] / 1e6:.2f} MFLOPs, "
              f"{metrics['params'] / 1e6:.3f}M params: top-1 {metrics['top1']:.2f} top-5 {metrics['top5']:.2f}")
        print(f"results: {run_dir / 'results.json'}")
    dist.cleanup()
    return run_dir, metrics


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
