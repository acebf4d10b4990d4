"""Phases 1 and 2 of the search: the supernet's data and its training, with atomic checkpoints
and the parameter samples.

Phase 1 (`--supernet-epochs`): SPOS single-path training, one uniformly drawn architecture per
step, SGD with momentum, learning rate decayed linearly from `--lr` to `--sgld-lr`.
Phase 2 (`--sgld-epochs`): the same path sampling with `SGLD` at the constant step `--sgld-lr`,
temperature τ (0 for the noise-free chains of the sgd_* proxies), momentum `--sgld-momentum`;
M = `--snapshots` samples θ^(m) are kept at evenly spaced steps, the last at the end of phase 2.
The end of phase 1 is kept as `checkpoint_supernet.pt` (a second chain can start from it).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from shared import checkpoint as ckpt_lib
from shared import dist, log
from shared.device import use_amp
from st_nas.data import ImageList, eval_transform, held_out_split, make_loader, shard, train_transform
from st_nas.engine import linear_lr, param_groups, rank_agreement, train_epoch
from st_nas.sgld import SGLD
from st_nas.space import sample_arch

__all__ = ["SearchData", "snapshot_steps", "train_supernet", "snapshot_paths"]

logger = logging.getLogger("st_nas")


@dataclass
class SearchData:
    """The loaders of a search: supernet training (train minus the held-out images, augmented),
    the held-out images (the proxy's validation set), the fixed calibration images."""
    train: object
    sampler: object
    search_val: object
    calib: object
    dataset_size: int
    search_val_images: int

    @classmethod
    def build(cls, args, splits: dict, device) -> SearchData:
        folder, files = splits["train"]
        full = ImageList(folder, splits["classes"], files)
        train_idx, held_idx = held_out_split(files, args.search_val_per_class)
        rng = np.random.default_rng(0)  # the same calibration images for every seed and run
        calib_idx = np.sort(rng.choice(train_idx, min(args.calib_images, len(train_idx)), replace=False))
        train = full.subset(train_idx, train_transform(args.input_size, args.rrc_min_scale, args.color_jitter))
        evaluation = eval_transform(args.input_size, args.crop_ratio)
        bs = dist.per_process_batch(args.batch_size)
        ebs = dist.per_process_batch(args.eval_batch_size, "--eval-batch-size")
        sampler = dist.build_sampler(train, shuffle=True, seed=args.seed, drop_last=True)
        loader = make_loader(train, bs, args.workers, device, sampler=sampler, drop_last=True)
        if len(loader) == 0:
            raise ValueError(f"{len(train)} supernet training images < the global batch {args.batch_size}")
        return cls(train=loader, sampler=sampler,
                   search_val=make_loader(shard(full.subset(held_idx, evaluation)), ebs, args.workers, device),
                   calib=make_loader(shard(full.subset(calib_idx, evaluation)), ebs, args.workers, device),
                   dataset_size=len(train), search_val_images=len(held_idx))


def snapshot_steps(args, steps_per_epoch: int) -> list[int]:
    """Global steps after which θ^(m) is kept: evenly spaced over phase 2, the last at its end."""
    t1, t2 = args.supernet_epochs * steps_per_epoch, args.sgld_epochs * steps_per_epoch
    if args.snapshots > t2:
        raise ValueError(f"--snapshots {args.snapshots}: phase 2 has only {t2} steps")
    return [t1 + round((m + 1) * t2 / args.snapshots) for m in range(args.snapshots)]


def snapshot_paths(run_dir: Path, count: int) -> list[Path]:
    return [Path(run_dir) / "snapshots" / f"theta_{m:02d}.pt" for m in range(count)]


def _optimizer(args, model: nn.Module, phase: int, temperature: float, dataset_size: int) -> SGLD:
    groups = param_groups(model, args.weight_decay)
    if phase == 1:  # tau = 0: SGD, bit for bit
        return SGLD(groups, lr=args.lr, temperature=0.0, dataset_size=dataset_size, momentum=args.momentum)
    return SGLD(groups, lr=args.sgld_lr, temperature=temperature, dataset_size=dataset_size,
                momentum=args.sgld_momentum)


def train_supernet(args, model, data: SearchData, device, run_dir: Path, temperature: float,
                   resume_from: Path | None = None, writer=None) -> list[Path]:
    """Run (or finish) phases 1 and 2; returns the M sample files. `model` is the bare supernet
    on `device` (wrapped in DDP here); checkpoints go to `run_dir/checkpoint_last.pt`."""
    ddp = dist.wrap_model(model, device, sync_bn=args.sync_bn, find_unused_parameters=dist.is_dist())
    e1, e2 = args.supernet_epochs, args.sgld_epochs
    spe = len(data.train)
    t1 = e1 * spe
    warm = int(round(args.warmup_epochs * spe))
    marks = snapshot_steps(args, spe)
    paths = snapshot_paths(run_dir, len(marks))
    criterion = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    amp = use_amp(args, device)

    def lr_fn(step):
        return linear_lr(step, t1, args.lr, args.sgld_lr, warm) if step < t1 else args.sgld_lr

    start, step, optimizer, phase = 0, 0, None, None
    if resume_from is not None:
        ck = ckpt_lib.resume(resume_from, model, map_location=device)  # model and this rank's RNG states
        start, step = ck["epoch"] + 1, ck["step"]
        if ck.get("generator", {}).get("seed", args.seed) != args.seed:
            raise ValueError(f"{resume_from}: written with --seed {ck['generator']['seed']}, not {args.seed}")
        if start < e1 + e2:
            phase = 1 if start < e1 else 2
            optimizer = _optimizer(args, model, phase, temperature, data.dataset_size)
            if ck.get("phase") == phase:
                optimizer.load_state_dict(ck["optimizer"])
        logger.info("resumed the supernet from %s at epoch %d (step %d)", resume_from, start, step)
    writer = writer or log.JsonlWriter(run_dir / "metrics.jsonl")
    pending: dict[int, dict] = {}

    def keep_sample(s):
        if s in marks:  # a CPU copy now, written with the epoch's checkpoint (after its collectives)
            pending[marks.index(s)] = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    for epoch in range(start, e1 + e2):
        now = 1 if epoch < e1 else 2
        if now != phase:
            phase, optimizer = now, _optimizer(args, model, now, temperature, data.dataset_size)
            logger.info("phase %d: %s, lr %s, temperature %g, N = %d", phase, "SGD" if phase == 1 else "SGLD",
                        f"{args.lr:g} -> {args.sgld_lr:g}" if phase == 1 else f"{args.sgld_lr:g}",
                        0.0 if phase == 1 else temperature, data.dataset_size)
        t0 = time.perf_counter()
        dist.set_epoch(data.sampler, epoch)
        stats, step = train_epoch(ddp, data.train, optimizer, criterion, lr_fn, step, device, amp, seed=args.seed,
                                  skeleton=model.skeleton, sample=sample_arch, on_step=keep_sample,
                                  header=f"phase {phase} epoch {epoch}", print_freq=args.print_freq)
        agree = rank_agreement(model, stats.pop("path_digest"))
        state = ckpt_lib.training_state(model, optimizer, epoch=epoch, step=step, args=args, phase=phase,
                                        temperature=temperature if phase == 2 else 0.0,
                                        generator={"seed": args.seed, "step": step})
        if dist.is_main():
            for m, sd in sorted(pending.items()):
                ckpt_lib.save_checkpoint({"model": sd, "step": marks[m], "index": m, "temperature": temperature},
                                         paths[m])
            ckpt_lib.save_checkpoint(state, run_dir / "checkpoint_last.pt")
            if epoch == e1 - 1:
                ckpt_lib.save_checkpoint(state, run_dir / "checkpoint_supernet.pt")
        pending.clear()
        dist.barrier()
        record = {"phase": phase, "epoch": epoch, "step": step, **{f"train_{k}": v for k, v in stats.items()},
                  "rank_checksums": [a[0] for a in agree], "seconds": time.perf_counter() - t0}
        writer.write(record)
        logger.info("phase %d epoch %d: loss %.3f, train top-1 %.2f, lr %.4g (%.0f s)", phase, epoch, stats["loss"],
                    stats["top1"], stats["lr"], record["seconds"])
    missing = [p for p in paths if not p.is_file()] if dist.is_main() else []
    if missing:
        raise RuntimeError(f"parameter samples missing after phase 2: {missing}")
    return paths
