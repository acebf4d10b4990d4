"""The AENet loop, written out: one training epoch and the scoring pass. (Evaluation inside the
training loop runs under `shared.rng.rng_isolated`, so it does not move the training RNG.)"""
from __future__ import annotations

import numpy as np
import torch

from celeba_spoof.model import AENet
from shared import dist
from shared.device import autocast
from shared.finite import check_finite
from shared.log import MetricLogger


def _to(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def train_one_epoch(model, criterion, loader, optimizer, device, epoch: int, *, amp: bool = True,
                    clip_grad: float = 0.0, print_freq: int = 20) -> dict:
    """One pass over the training set; returns the epoch's mean loss terms (averaged over ranks)
    and `steps`, the optimizer steps taken (the same on every rank and for any number of ranks:
    the loader's batch is the global batch's share)."""
    model.train()
    meters = MetricLogger()
    steps = 0
    for batch in meters.log_every(loader, print_freq, header=f"train {epoch}"):
        batch = _to(batch, device)
        with autocast(device, amp):
            out = model(batch["image"])
        losses = criterion(out, batch)  # fp32 (the criterion casts the outputs)
        total = losses["total"]
        check_finite(losses, f"epoch {epoch}", total)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        optimizer.step()
        steps += 1
        meters.update(n=batch["image"].shape[0], lr=optimizer.param_groups[0]["lr"],
                      **{k: v.detach() for k, v in losses.items()})
    return {**dist.reduce_dict(meters.averages()), "steps": steps}


@torch.no_grad()
def score(model, loader, device, *, amp: bool = False, n: int | None = None) -> np.ndarray | None:
    """Spoof probabilities of every item of ``loader``'s dataset, in dataset order, on rank 0
    (None elsewhere). Under DDP each rank scores its shard; DistributedSampler's padding repeats
    items, which land on the same index."""
    model.eval()
    idx, probs = [], []
    for batch in loader:
        with autocast(device, amp):
            out = model(batch["image"].to(device, non_blocking=True))
        probs.append(AENet.spoof_prob(out).float().cpu())
        idx.append(batch["index"])
    local = (torch.cat(idx).numpy(), torch.cat(probs).numpy()) if idx else (np.zeros(0, int), np.zeros(0))
    parts = dist.all_gather_object(local)
    if not dist.is_main():
        return None
    n = n if n is not None else len(loader.dataset)
    p = np.full(n, np.nan, dtype=np.float64)
    for i, v in parts:
        p[i] = v
    if np.isnan(p).any():
        raise RuntimeError(f"{int(np.isnan(p).sum())} of {n} items were not scored")
    return p
