"""The DMCP loops, written out: one search iteration (sandwich weight step, then architecture
step), a search epoch, BN re-calibration, evaluation, and a plain retraining epoch.

Search (Fig. 2a; official DMCPRunner): every iteration
1. weight step (variant sandwich rule): forward the max architecture (CE, optionally label-
   smoothed), the min architecture and `num_sample - 2` random ones (stage 1: uniformly random
   states; stage 2: uniform with a probability that decays from 1, else drawn from the Markov
   chains); the others learn from the max output by in-place distillation (KL, T = 1); the
   gradients accumulate and one SGD step follows;
2. stage 2 only: architecture step on the same batch: the max architecture with every channel
   scaled by its marginal probability, loss CE + 0.1 * budget_loss(E[FLOPs]); gradients are
   computed for alpha only (`torch.autograd.grad`: no weight gradient is ever formed).
Under torchrun the gradients are averaged over ranks by hand (one flat all-reduce), as the
official code does: the architecture step's backward only reaches alpha, which DDP's reducer
cannot express. The random architectures come from a generator seeded identically on every rank.
"""
from __future__ import annotations

import math

import torch
import torch.distributed as tdist
from torch import nn

from dmcp.build import target_madds
from dmcp.loss import budget_loss, classification_loss, distill_kl
from shared import dist
from shared.device import autocast
from shared.finite import check_finite
from shared.log import MetricLogger
from shared.metrics.classification import accuracy

__all__ = ["warmup_cosine", "param_groups", "allreduce_grads", "SearchState", "search_step",
           "search_one_epoch", "calibrate_bn", "evaluate", "train_one_epoch"]


def warmup_cosine(step: int, total: int, start_lr: float, peak_lr: float, warmup: int, final_lr: float) -> float:
    """The official WarmUpCosineLRScheduler: linear from start_lr to peak_lr over `warmup`
    steps, then cosine from peak_lr to final_lr at step `total`."""
    if warmup > 0 and step < warmup:
        return start_lr + (peak_lr - start_lr) * step / warmup
    ratio = min(1.0, (step - warmup) / max(1, total - warmup))
    return final_lr + (peak_lr - final_lr) * (1 + math.cos(math.pi * ratio)) / 2


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on conv / linear weights only (official `no_wd`: none on BN and biases)."""
    decay, no_decay = [], []
    for m in model.modules():
        for name, p in m.named_parameters(recurse=False):
            if name == "alpha":
                continue
            (no_decay if isinstance(m, nn.modules.batchnorm._BatchNorm) or name == "bias" else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def allreduce_grads(params) -> None:
    """Average `.grad` over ranks with one flat all-reduce (no-op in a single process)."""
    if not dist.is_dist():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    tdist.all_reduce(flat)
    flat /= dist.world_size()
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


class SearchState:
    """Counters and the architecture-sampling generator of a search (saved in checkpoints)."""

    def __init__(self, total_steps: int, arch_start: int, seed: int):
        self.step = 0
        self.total_steps = int(total_steps)
        self.arch_start = int(arch_start)
        self.random_prob = 1.0
        self.generator = torch.Generator().manual_seed(int(seed))

    def state_dict(self) -> dict:
        return {"step": self.step, "total_steps": self.total_steps, "arch_start": self.arch_start,
                "random_prob": self.random_prob, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.step, self.random_prob = int(state["step"]), float(state["random_prob"])
        self.total_steps, self.arch_start = int(state["total_steps"]), int(state["arch_start"])
        self.generator.set_state(state["generator"])

    @property
    def stage(self) -> int:
        """The stage of the next step."""
        return 2 if self.step >= self.arch_start else 1

    @property
    def last_stage(self) -> int:
        """The stage of the step just done."""
        return 2 if self.step - 1 >= self.arch_start else 1


def _random_states(net, state: SearchState, args) -> list[int]:
    """One random architecture: uniform in stage 1; in stage 2 uniform with probability
    `random_prob` (decayed by `random_decay` on every draw of a step divisible by
    `random_decay_every`, as the official 'scheduled_random'), else a Markov-chain sample."""
    if state.stage == 1:
        return net.sample_uniform(state.generator)
    if state.step % args.random_decay_every == 0:
        state.random_prob *= args.random_decay
    if float(torch.rand(1, generator=state.generator)) < state.random_prob:
        return net.sample_uniform(state.generator)
    return net.sample_markov(state.generator)[0].tolist()


def search_step(net, images, target, opt_w, opt_a, state: SearchState, args, amp: bool) -> dict:
    """One search iteration on one batch (weight step, then the architecture step in stage 2)."""
    stats = {}
    device = images.device
    # 1. weight step: the variant sandwich rule
    net.set_scaling(False)
    opt_w.zero_grad(set_to_none=True)
    teacher = None
    for i in range(args.num_sample):
        if i == 0:
            net.set_max()
        elif i == 1:
            net.set_min()
        else:
            net.set_states(_random_states(net, state, args))
        with autocast(device, amp):
            out = net(images)
        if i == 0:
            loss = classification_loss(out, target, args.label_smoothing)
            teacher = out.detach()
            stats["acc_max"] = accuracy(out.detach().float(), target, (1,))[0]
        else:
            loss = args.distill_weight * distill_kl(out, teacher, args.distill_temperature)
        name = "loss_max" if i == 0 else "loss_min" if i == 1 else f"loss_rand{i - 1}"
        check_finite({name: loss.detach()}, f"search step {state.step}")
        loss.backward()
        stats[name] = loss.detach()
    net.set_max()
    allreduce_grads(net.weight_parameters())
    opt_w.step()

    # 2. architecture step (stage 2), gradients for alpha only
    if state.stage == 2 and (state.step - state.arch_start) % args.arch_train_freq == 0:
        alphas = net.arch_parameters()
        net.set_scaling(True)
        try:
            with autocast(device, amp):
                out = net(images)
            ce = classification_loss(out, target, args.label_smoothing)
            emadds = net.expected_flops()
            floss = budget_loss(emadds, target_madds(args), args.budget_loss, band=args.budget_band)
            total = ce + args.budget_weight * floss
            check_finite({"arch_ce": ce.detach(), "budget": floss.detach()}, f"architecture step {state.step}")
            grads = torch.autograd.grad(total, alphas)
        finally:
            net.set_scaling(False)
        for a, g in zip(alphas, grads):
            a.grad = g.detach()
        allreduce_grads(alphas)
        opt_a.step()
        opt_a.zero_grad(set_to_none=True)
        stats.update(arch_ce=ce.detach(), budget=floss.detach(), eflops=emadds.detach(),
                     arch_acc=accuracy(out.detach().float(), target, (1,))[0])
    state.step += 1
    return stats


def search_one_epoch(net, loader, opt_w, opt_a, state: SearchState, args, device, epoch: int,
                     lr_fn, arch_lr_fn, amp: bool) -> dict:
    """One pass over the training set; returns the epoch's mean statistics (over ranks)."""
    net.train()
    meters = MetricLogger()
    for images, target in meters.log_every(loader, args.print_freq, header=f"search {epoch}"):
        set_lr(opt_w, lr_fn(state.step))
        set_lr(opt_a, arch_lr_fn(state.step))
        images = images.to(device, non_blocking=True)
        target = target.to(device, non_blocking=True)
        stats = search_step(net, images, target, opt_w, opt_a, state, args, amp)
        meters.update(n=1, **stats)
    out = dist.reduce_dict(meters.averages())
    out["lr"] = opt_w.param_groups[0]["lr"]
    out["arch_lr"] = opt_a.param_groups[0]["lr"]
    out["stage"] = state.last_stage
    return out


@torch.no_grad()
def calibrate_bn(model: nn.Module, loader, n_batches: int, device, amp: bool) -> None:
    """Re-estimate every BN's statistics on `n_batches` training batches (the sandwich passes
    share BN buffers across widths). The statistics are the exact average over the batches
    (momentum None); the official code used momentum 1, i.e. only the last batch."""
    if n_batches <= 0:
        return
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m, m.momentum, m.training) for m in bns]
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        for i, (images, _) in enumerate(loader):
            if i >= n_batches:
                break
            with autocast(device, amp):
                model(images.to(device, non_blocking=True))
    finally:
        for m, momentum, training in saved:
            m.momentum = momentum
            m.training = training


@torch.no_grad()
def evaluate(model: nn.Module, loader, device, amp: bool, header: str = "eval") -> dict:
    """Top-1 / top-5 (percent) and CE over this rank's shard, summed over ranks."""
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64)  # n, top1 hits, top5 hits, loss sum
    for images, target in MetricLogger().log_every(loader, 50, header=header):
        images, target = images.to(device, non_blocking=True), target.to(device, non_blocking=True)
        with autocast(device, amp):
            out = model(images)
        out = out.float()
        n = target.shape[0]
        top1, top5 = accuracy(out, target, (1, 5))
        sums += torch.tensor([n, top1 * n / 100, top5 * n / 100,
                              float(nn.functional.cross_entropy(out, target, reduction="sum"))], dtype=torch.float64)
    if dist.is_dist():  # nccl reduces CUDA tensors, gloo CPU ones
        t = sums.to(device if tdist.get_backend() == "nccl" else "cpu")
        tdist.all_reduce(t)
        sums = t.cpu()
    n = max(float(sums[0]), 1.0)
    return {"top1": 100 * float(sums[1]) / n, "top5": 100 * float(sums[2]) / n, "loss": float(sums[3]) / n,
            "images": int(sums[0])}


def train_one_epoch(model, loader, optimizer, device, epoch: int, step: int, lr_fn, label_smoothing: float,
                    amp: bool, print_freq: int = 50) -> tuple[dict, int]:
    """One retraining epoch of the pruned network (DDP-wrapped or not); returns (stats, step)."""
    model.train()
    meters = MetricLogger()
    for images, target in meters.log_every(loader, print_freq, header=f"retrain {epoch}"):
        set_lr(optimizer, lr_fn(step))
        images, target = images.to(device, non_blocking=True), target.to(device, non_blocking=True)
        with autocast(device, amp):
            out = model(images)
        loss = classification_loss(out, target, label_smoothing)
        check_finite({"ce": loss.detach()}, f"retraining epoch {epoch} step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        meters.update(n=1, loss=loss.detach(), acc=accuracy(out.detach().float(), target, (1,))[0])
    out = dist.reduce_dict(meters.averages())
    out["lr"] = optimizer.param_groups[0]["lr"]
    return out, step
