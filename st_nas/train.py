"""Retrain a searched architecture from scratch on the whole training split and evaluate it on
val/ (SPOS's protocol: the supernet weights are not inherited).

    cd st_nas && python train.py                       # the newest toy search's arch.json
    python train.py --config configs/st_nas_a.yaml --data-root /datasets/imagenet --arch runs/.../arch.json
    torchrun --nproc_per_node 8 train.py --config configs/st_nas_a.yaml --data-root /datasets/imagenet

Without --arch, the arch.json of the newest search run of the same config is taken (an error
says to run `make st_nas-search` first when there is none). The run goes to
runs/st_nas/<config>-retrain/<stamp>/: metrics.jsonl, checkpoint_last.pt (with the architecture
and the class list, which eval.py needs), results.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch
from torch import nn

from shared import checkpoint as ckpt_lib
from shared import config, dist, log, run
from shared.device import resolve_device, use_amp
from shared.metrics.flops import count_params
from shared.rng import rng_isolated
from st_nas.data import ImageList, eval_transform, load_splits, make_loader, shard, train_transform
from st_nas.engine import evaluate, linear_lr, param_groups, train_epoch
from st_nas.model import ChildNet
from st_nas.options import add_all_args
from st_nas.space import Skeleton, arch_from_json, read_arch_file

logger = logging.getLogger("st_nas")
PAPER = "st_nas"


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("ST-NAS retraining", add_help=add_help)
    p.add_argument("--arch", default="", help="arch.json of a search (default: the newest search run of this config)")
    return add_all_args(p)


def find_arch(args) -> Path:
    if args.arch:
        return Path(args.arch)
    base = run.run_root(PAPER, run.run_name(args), args.output_dir)
    runs = sorted((p for p in base.glob("*") if (p / "arch.json").is_file()), reverse=True) if base.is_dir() else []
    if not runs:
        raise FileNotFoundError(f"no arch.json under {base}: search first (make st_nas-search"
                                f"{' CONFIG=' + args.config if args.config else ''}) or pass --arch")
    return runs[0] / "arch.json"


def retrain(args, record: dict, run_dir: Path, device, splits: dict, resume_from: Path | None = None) -> dict:
    """Train `record` (an arch.json dict) from scratch; returns the final val metrics."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    skeleton = Skeleton.from_dict(record["skeleton"])
    arch = arch_from_json(record["stages"], skeleton)
    if skeleton.num_classes != len(splits["classes"]):
        raise ValueError(f"the architecture has {skeleton.num_classes} classes, the data {len(splits['classes'])}")
    torch.manual_seed(args.seed)  # the same initial weights on every rank
    net = ChildNet(skeleton, arch, dropout=args.dropout, zero_init_residual=args.zero_init_residual).to(device)
    dist.seed_everything(args.seed)
    model = dist.wrap_model(net, device, sync_bn=args.sync_bn)
    folder, files = splits["train"]
    train_set = ImageList(folder, splits["classes"], files,
                          train_transform(args.input_size, args.rrc_min_scale, args.color_jitter))
    vfolder, vfiles = splits["val"]
    val_set = ImageList(vfolder, splits["classes"], vfiles, eval_transform(args.input_size, args.crop_ratio))
    sampler = dist.build_sampler(train_set, shuffle=True, seed=args.seed, drop_last=True)
    train_loader = make_loader(train_set, dist.per_process_batch(args.batch_size), args.workers, device, sampler,
                               drop_last=True)
    if len(train_loader) == 0:
        raise ValueError(f"{len(train_set)} training images < the global batch {args.batch_size}")
    val_loader = make_loader(shard(val_set), dist.per_process_batch(args.eval_batch_size, "--eval-batch-size"),
                             args.workers, device)
    optimizer = torch.optim.SGD(param_groups(net, args.weight_decay), lr=args.lr, momentum=args.momentum)
    criterion = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    spe = len(train_loader)
    total, warm = args.retrain_epochs * spe, int(round(args.warmup_epochs * spe))
    amp, eval_amp = use_amp(args, device), use_amp(args, device, evaluation=True)
    start, step, val = 0, 0, {}
    if resume_from is not None:
        ck = ckpt_lib.resume(resume_from, net, optimizer, map_location=device)
        start, step, val = ck["epoch"] + 1, ck["step"], ck.get("val", {})
        logger.info("resumed the retraining from %s at epoch %d", resume_from, start)
    writer = log.JsonlWriter(run_dir / "metrics.jsonl")
    logger.info("retraining %.2fM MAdds, %.3fM params for %d epochs x %d steps", record["madds"] / 1e6,
                count_params(net) / 1e6, args.retrain_epochs, spe)
    for epoch in range(start, args.retrain_epochs):
        t0 = time.perf_counter()
        dist.set_epoch(sampler, epoch)
        stats, step = train_epoch(model, train_loader, optimizer, criterion,
                                  lambda s: linear_lr(s, total, args.lr, 0.0, warm), step, device, amp,
                                  header=f"retrain epoch {epoch}", print_freq=args.print_freq)
        stats.pop("path_digest")
        rec = {"epoch": epoch, "step": step, **{f"train_{k}": v for k, v in stats.items()}}
        if epoch == args.retrain_epochs - 1 or (args.val_every and (epoch + 1) % args.val_every == 0):
            with rng_isolated(device):
                val = evaluate(net, val_loader, device, eval_amp, header="val", print_freq=args.print_freq)
            rec.update({f"val_{k}": v for k, v in val.items()})
        rec["seconds"] = time.perf_counter() - t0
        writer.write(rec)
        logger.info("retrain epoch %d: loss %.3f%s (%.0f s)", epoch, stats["loss"],
                    f", val top-1 {val['top1']:.2f}" if "val_top1" in rec else "", rec["seconds"])
        state = ckpt_lib.training_state(net, optimizer, epoch=epoch, step=step, args=args, val=val, arch=record,
                                        classes=list(splits["classes"]))
        ckpt_lib.save_checkpoint(state, run_dir / "checkpoint_last.pt")
        dist.barrier()
    if not val:  # resumed after the last epoch, or no epochs
        with rng_isolated(device):
            val = evaluate(net, val_loader, device, eval_amp, header="val", print_freq=args.print_freq)
    return val


def main(args):
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    arch_path = find_arch(args)
    _, _, record = read_arch_file(arch_path)
    run_dir, resume_from = run.resolve_run_dir(args, PAPER, name="retrain")
    log.setup_logging(run_dir)
    config.save_config(args, run_dir / "config.yaml")
    log.run_info(args, run_dir)
    splits = load_splits(args, train=True, val=True)
    logger.info("architecture: %s", arch_path)
    metrics = retrain(args, record, run_dir, device, splits, resume_from)
    results = {"config": config.config_name(args), "arch": str(arch_path), "madds": record["madds"],
               "params": record.get("params"), "top1": metrics["top1"], "top5": metrics["top5"],
               "val_images": metrics["images"], "retrain_epochs": args.retrain_epochs, "run_dir": str(run_dir)}
    if dist.is_main():
        (run_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
        print(f"retrained {arch_path} ({record['madds'] / 1e6:.2f}M MAdds): top-1 {metrics['top1']:.2f}, "
              f"top-5 {metrics['top5']:.2f} on {metrics['images']} val images\nresults: {run_dir / 'results.json'}")
    dist.cleanup()
    return run_dir, results


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
