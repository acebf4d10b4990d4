"""The BSN++ loop, written out: one training epoch, a validation loss pass, and inference that
turns every video (or window) into boundary probabilities and confidence maps."""
from __future__ import annotations

import math

import numpy as np
import torch

from shared import dist
from shared.device import autocast
from shared.finite import check_finite
from shared.log import MetricLogger


def _to(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def train_one_epoch(model, criterion, loader, optimizer, device, epoch: int, *, amp: bool = True,
                    clip_grad: float = 0.0, print_freq: int = 10) -> dict:
    """One pass over the training set; returns the epoch's mean loss terms (averaged over ranks)."""
    model.train()
    meters = MetricLogger()
    for batch in meters.log_every(loader, print_freq, header=f"train {epoch}"):
        batch = _to(batch, device)
        with autocast(device, amp):
            out = model(batch["features"])
        losses = criterion(out, batch)  # losses in fp32
        total = losses["total"]
        check_finite(losses, f"epoch {epoch}", total)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        optimizer.step()
        meters.update(n=batch["features"].shape[0], **{k: v.detach() for k, v in losses.items()})
    return dist.reduce_dict(meters.averages())


@torch.no_grad()
def validation_loss(model, criterion, loader, device, *, amp: bool = True) -> dict:
    """Mean loss terms on a labelled split (for model selection), averaged over ranks."""
    model.eval()
    sums, count = {}, 0
    for batch in loader:
        batch = _to(batch, device)
        with autocast(device, amp):
            out = model(batch["features"])
        losses = criterion(out, batch)
        n = batch["features"].shape[0]
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + float(v) * n
        count += n
    means = {k: v / max(count, 1) for k, v in sums.items()}
    return dist.reduce_dict(means) if means else {"total": math.nan}


@torch.no_grad()
def infer(model, loader, device, *, amp: bool = True) -> dict[int, dict[str, np.ndarray]]:
    """Fused scores {item index: {start, end, reg, cls}} (float32 numpy) for this rank's items.

    Under DDP each rank sees its shard (DistributedSampler pads with repeats, which land on the
    same index); the caller post-processes locally and gathers the small proposal lists.
    """
    from bsnpp.model import BSNPP

    model.eval()
    local = {}
    for batch in MetricLogger().log_every(loader, 20, header="infer"):
        feats = batch["features"].to(device, non_blocking=True)
        with autocast(device, amp):
            out = model(feats)
        fused = BSNPP.fuse({k: v.float() for k, v in out.items()})
        arrays = {k: v.cpu().numpy().astype(np.float32) for k, v in fused.items()}
        for i, idx in enumerate(batch["index"].tolist()):
            local[idx] = {k: a[i] for k, a in arrays.items()}
    return local
