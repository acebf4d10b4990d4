"""The classification loop, written out: learning-rate schedules, one training epoch (CE + L1 on
the edge weights) and the evaluation (top-1 / top-5 over the sharded validation set)."""
from __future__ import annotations

import math

import torch

from shared import dist
from shared.device import autocast
from shared.finite import check_finite
from shared.log import MetricLogger
from shared.metrics.classification import accuracy

__all__ = ["lr_at", "train_one_epoch", "evaluate"]


def lr_at(args, epoch: float, finetune: bool) -> float:
    """Learning rate at fractional epoch `epoch` of its phase.

    Main phase (`--lr-schedule`): `step` (x gamma every `--lr-step` epochs: torchvision's ResNet
    recipe), `exp` (x gamma every epoch: the MobileNetV2 recipe) or `cosine` to 0 over `--epochs`;
    a linear warm-up over `--warmup-epochs` first. Fine-tuning after pruning: cosine from
    `--finetune-lr` to 0 over `--finetune-epochs`.
    """
    if finetune:
        return 0.5 * args.finetune_lr * (1 + math.cos(math.pi * min(epoch / max(args.finetune_epochs, 1e-9), 1.0)))
    if args.warmup_epochs and epoch < args.warmup_epochs:
        return args.lr * (epoch + 1e-3) / args.warmup_epochs
    if args.lr_schedule == "step":
        return args.lr * args.lr_gamma ** int(epoch // args.lr_step)
    if args.lr_schedule == "exp":
        return args.lr * args.lr_gamma ** int(epoch)
    if args.lr_schedule == "cosine":
        return 0.5 * args.lr * (1 + math.cos(math.pi * min(epoch / max(args.epochs, 1e-9), 1.0)))
    raise ValueError(f"unknown --lr-schedule {args.lr_schedule!r} (step, exp, cosine)")


def train_one_epoch(model, loader, criterion, optimizer, device, epoch: int, args, *, finetune: bool,
                    amp: bool, phase_epoch: int) -> dict:
    """One epoch: forward under autocast, CE + lambda * L1, finiteness check naming the bad term,
    backward, SGD step. Returns averaged meters (reduced over ranks for logging only)."""
    model.train()
    meters = MetricLogger()
    iters = len(loader)
    skipped = 0
    header = f"{'finetune' if finetune else 'train'} epoch {epoch}"
    for it, (images, target, n_skip) in enumerate(meters.log_every(loader, args.print_freq, header)):
        skipped += n_skip
        lr = lr_at(args, phase_epoch + it / iters, finetune)
        for g in optimizer.param_groups:
            g["lr"] = lr * g.get("lr_mult", 1.0)
        images, target = images.to(device, non_blocking=True), target.to(device, non_blocking=True)
        with autocast(device, amp):
            logits = model(images)
        loss, parts = criterion(logits, target, model)
        check_finite(parts, f"epoch {epoch} iteration {it}", loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        meters.update(n=images.shape[0], loss=loss.detach(), lr=lr, **parts)
    stats = dist.reduce_dict(meters.averages())
    stats["skipped_images"] = int(sum(dist.all_gather_object(skipped)))
    return stats


@torch.no_grad()
def evaluate(model, loader, device, amp: bool = False) -> dict:
    """top-1 / top-5 (percent) over every rank's shard; `images` = images scored, `skipped` =
    undecodable ones left out. fp32 unless `amp` (the repository's precision rule)."""
    model.eval()
    correct1 = correct5 = seen = skipped = 0
    for images, target, n_skip in MetricLogger().log_every(loader, 50, "eval"):
        skipped += n_skip
        if images is None:
            continue
        images, target = images.to(device, non_blocking=True), target.to(device, non_blocking=True)
        with autocast(device, amp):
            logits = model(images)
        n = images.shape[0]
        top1, top5 = accuracy(logits.float(), target, topk=(1, 5))
        correct1 += round(top1 * n / 100)
        correct5 += round(top5 * n / 100)
        seen += n
    totals = dist.all_gather_object((correct1, correct5, seen, skipped))
    c1, c5, n, sk = (sum(t[i] for t in totals) for i in range(4))
    if n == 0:
        raise RuntimeError("no validation image could be scored")
    return {"top1": 100.0 * c1 / n, "top5": 100.0 * c5 / n, "images": n, "skipped": sk}
