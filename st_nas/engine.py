"""The loops, written out: one training epoch (a supernet path per step, or a plain child
network), BN re-calibration, evaluation, the learning-rate schedule and the rank check.

Supernet step (SPOS, single path): draw an architecture uniformly from the space with the step's
path generator (seeded by (seed, step): every rank draws the same one), forward it on the shared
weights, cross-entropy with label smoothing, backward, and an `SGLD` step (τ = 0 in phase 1 is
SGD) whose noise comes from the step's noise generator. Under torchrun the supernet is wrapped in
DDP with `find_unused_parameters` (each path leaves most parameters without a gradient); since all
ranks take the same path, the same parameters are updated and receive the same noise everywhere.
"""
from __future__ import annotations

import hashlib

import torch
import torch.distributed as tdist
from torch import nn

from shared import dist
from shared.device import autocast
from shared.finite import check_finite
from shared.log import MetricLogger
from shared.metrics.classification import accuracy
from st_nas.sgld import NOISE, PATH, step_generator

__all__ = ["linear_lr", "set_lr", "param_groups", "train_epoch", "evaluate", "calibrate_bn", "rank_agreement",
           "param_checksum"]


def linear_lr(step: int, total: int, lr: float, end_lr: float = 0.0, warmup: int = 0) -> float:
    """SPOS's schedule: linear from `lr` at step 0 to `end_lr` at step `total` (after an optional
    linear warm-up from 0.1 lr over `warmup` steps)."""
    if warmup > 0 and step < warmup:
        return lr * (0.1 + 0.9 * step / warmup)
    t = min(1.0, max(0, step - warmup) / max(1, total - warmup))
    return lr + (end_lr - lr) * t


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on conv / linear weights only; none on BN parameters and biases (SPOS)."""
    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.ndim > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train_epoch(model, loader, optimizer, criterion, lr_fn, step: int, device, amp: bool, *, seed: int = 0,
                skeleton=None, sample=None, on_step=None, header: str = "train", print_freq: int = 50):
    """One epoch; returns (averaged stats, next global step).

    `sample(skeleton, generator)` given: each step trains the path it draws from the generator of
    (seed, step) (the supernet). The optimizer's noise (SGLD with τ > 0) comes from the generator
    of (seed, step) on `device`. `on_step(step)` runs after every optimizer step (snapshots).
    """
    model.train()
    noisy = any(g.get("temperature", 0) > 0 for g in optimizer.param_groups)
    meters = MetricLogger()
    paths = hashlib.sha1()
    for batch in meters.log_every(loader, print_freq, header):
        if batch is None:
            raise RuntimeError("every image of a training batch failed to decode (see the warnings above)")
        x, y, skipped = batch
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        lr = lr_fn(step)
        set_lr(optimizer, lr)
        with autocast(device, amp):
            if sample is not None:
                arch = sample(skeleton, step_generator(seed, step, PATH))
                paths.update(repr(arch).encode())
                out = model(x, arch)
            else:
                out = model(x)
        loss = criterion(out.float(), y)
        check_finite({"cross_entropy": loss}, f"{header}, step {step} (lr {lr:.4g})")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if noisy:
            optimizer.step(generator=step_generator(seed, step, NOISE, device))
        else:
            optimizer.step()
        step += 1
        if on_step is not None:
            on_step(step)
        meters.update(n=len(y), loss=loss.item(), top1=accuracy(out.detach().float(), y, (1,))[0], lr=lr,
                      skipped=skipped)
    stats = dist.reduce_dict({k: v for k, v in meters.averages().items() if k != "skipped"})
    stats["skipped"] = int(round(dist.reduce_dict({"s": meters.meters["skipped"].total})["s"] * dist.world_size()))
    stats["path_digest"] = paths.hexdigest()[:16]
    return stats, step


@torch.no_grad()
def evaluate(model, loader, device, amp: bool = False, arch=None, header: str = "eval", print_freq: int = 50) -> dict:
    """Top-1 / top-5 (shared.metrics accuracy), mean cross-entropy and the number of images, summed
    over ranks (each rank sees its own shard)."""
    model.eval()
    sums = torch.zeros(5, dtype=torch.float64)
    for batch in MetricLogger().log_every(loader, print_freq, header):
        if batch is None:
            continue
        x, y, skipped = batch
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast(device, amp):
            out = model(x) if arch is None else model(x, arch)
        out = out.float()
        n = len(y)
        top1, top5 = accuracy(out, y, (1, 5))
        loss = nn.functional.cross_entropy(out, y, reduction="sum").item()
        sums += torch.tensor([round(top1 * n / 100), round(top5 * n / 100), loss, n, skipped], dtype=torch.float64)
    if dist.is_dist():
        sums = sums.to(_comm_device())
        tdist.all_reduce(sums)
        sums = sums.cpu()
    c1, c5, loss, n, skipped = sums.tolist()
    if n == 0:
        raise RuntimeError(f"{header}: no image could be evaluated")
    return {"top1": 100.0 * c1 / n, "top5": 100.0 * c5 / n, "loss": loss / n, "images": int(n), "skipped": int(skipped)}


def _comm_device() -> torch.device:
    if dist.is_dist() and tdist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _bns(model) -> list:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def calibrate_bn(model, loader, device, amp: bool = False, arch=None) -> None:
    """Re-estimate BN statistics for one architecture on fixed training images (SPOS): reset,
    cumulative averages over the loader in train mode, then the mean over ranks."""
    bns = _bns(model)
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs the same
    model.train()
    try:
        for batch in loader:
            if batch is None:
                continue
            x = batch[0].to(device, non_blocking=True)
            with autocast(device, amp):
                model(x) if arch is None else model(x, arch)
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        model.eval()
    if dist.is_dist():  # every rank evaluates with the same statistics
        stats = [t for m in bns for t in (m.running_mean, m.running_var)]
        flat = torch.cat([t.reshape(-1) for t in stats]).to(_comm_device())
        tdist.all_reduce(flat)
        flat = (flat / dist.world_size()).to(stats[0].device)
        offset = 0
        for t in stats:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()


def param_checksum(model) -> float:
    """Sum of every parameter in float64: equal on every rank when they agree (BN statistics are
    left out: each rank's last forward updates its own)."""
    with torch.no_grad():
        return float(sum(p.double().sum().item() for p in dist.unwrap(model).parameters()))


def rank_agreement(model, path_digest: str) -> list:
    """(checksum, path digest) of every rank; RuntimeError when the ranks disagree (different
    paths, noise or parameters would silently turn the supernet into several)."""
    mine = (param_checksum(model), path_digest)
    every = dist.all_gather_object(mine)
    if any(e != every[0] for e in every):
        raise RuntimeError(f"the ranks disagree on the supernet (parameter checksum, path digest): {every}")
    return every
