"""Distributed training helpers: torchrun environment, DDP wrapping, samplers, reductions.

One code path for a single CPU process, one GPU, and many GPUs or nodes under `torchrun`:
without torchrun's environment (RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT) every
helper degrades to the single-process behaviour. Backend: nccl on CUDA, gloo on CPU.
"""
from __future__ import annotations

import datetime
import logging
import os
import random

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler, RandomSampler, SequentialSampler

__all__ = [
    "init_distributed", "cleanup", "is_dist", "rank", "local_rank", "world_size", "is_main",
    "barrier", "reduce_mean", "reduce_dict", "all_gather_object", "broadcast_object",
    "wrap_model", "unwrap", "build_sampler", "set_epoch", "seed_everything", "per_process_batch",
]

DEFAULT_TIMEOUT_MINUTES = 60.0


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_dist() else 0


def world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def is_main() -> bool:
    return rank() == 0


def init_distributed(device: torch.device | str = "cpu",
                     timeout_minutes: float = DEFAULT_TIMEOUT_MINUTES) -> bool:
    """Join the process group described by torchrun's environment; True when distributed.

    The backend follows the device (nccl for CUDA, gloo for CPU) and on CUDA each rank takes the
    GPU of its LOCAL_RANK. Calling it twice, or without the environment, is harmless.

    `timeout_minutes` (`--dist-timeout`) bounds how long a collective waits for the slowest rank.
    NCCL's own default is 10 minutes: too short when rank 0 writes a split's results or draws a
    baseline while the others already wait in the next collective. Keep rank-0-only work short
    anyway, and never between two collectives that the other ranks have already entered.
    """
    if is_dist():
        return True
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1 or "RANK" not in os.environ:
        return False
    device = torch.device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend, init_method="env://",
                            timeout=datetime.timedelta(minutes=float(timeout_minutes)))
    return True


def cleanup() -> None:
    """Leave the process group (end of main, or in a finally block)."""
    if is_dist():
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if is_dist():
        dist.barrier()


def _comm_device() -> torch.device:
    if is_dist() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over ranks (a copy; the input is untouched). For logging, not gradients."""
    if not is_dist():
        return tensor.detach().clone()
    t = tensor.detach().clone().to(_comm_device(), torch.float64 if not tensor.is_floating_point() else tensor.dtype)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return (t / world_size()).to(tensor.device)


def reduce_dict(values: dict[str, float]) -> dict[str, float]:
    """Mean of a dict of scalars over ranks, keys in sorted order so every rank agrees."""
    if not is_dist() or not values:
        return {k: float(v) for k, v in values.items()}
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    t /= world_size()
    return {k: float(v) for k, v in zip(keys, t.tolist())}


def all_gather_object(obj) -> list:
    """Every rank's `obj`, in rank order (a one-element list when not distributed)."""
    if not is_dist():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj, src: int = 0):
    """Rank `src`'s object on every rank (run folders, timestamps, decisions made on rank 0)."""
    if not is_dist():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def wrap_model(model: torch.nn.Module, device: torch.device, sync_bn: bool = False,
               find_unused_parameters: bool = False, broadcast_buffers: bool = True) -> torch.nn.Module:
    """Move to `device` and wrap in DDP when distributed (SyncBN conversion on request, on CUDA
    only: PyTorch's SyncBatchNorm does not run on CPU, where each rank keeps its own BN statistics).

    `broadcast_buffers=False` stops DDP from re-sending every buffer from rank 0 at each forward:
    worth it when a model holds large constant buffers (and keeps BN statistics in step by SyncBN).
    """
    model = model.to(device)
    if not is_dist():
        return model
    device = torch.device(device)
    if sync_bn and device.type == "cuda":  # SyncBatchNorm has no CPU (gloo) implementation
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index if device.index is not None else local_rank()] if device.type == "cuda" else None
    extra = {} if broadcast_buffers else {"broadcast_buffers": False}  # the default: no warning
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=ids, find_unused_parameters=find_unused_parameters, **extra)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare module under DDP / DataParallel (what checkpoints hold)."""
    return model.module if hasattr(model, "module") else model


def build_sampler(dataset, shuffle: bool, seed: int = 0, drop_last: bool = False):
    """DistributedSampler when distributed; otherwise a Random/SequentialSampler.

    The single-process random sampler draws from the global torch RNG, so restoring RNG states on
    resume reproduces the order. Call `set_epoch(sampler, epoch)` at the start of every epoch.
    """
    if is_dist():
        return DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
    return RandomSampler(dataset) if shuffle else SequentialSampler(dataset)


def set_epoch(sampler, epoch: int) -> None:
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)


def seed_everything(seed: int) -> int:
    """Seed python, numpy and torch with `seed + rank` (different augmentations per rank)."""
    s = int(seed) + rank()
    random.seed(s)
    np.random.seed(s % (2**32))
    torch.manual_seed(s)
    return s


def per_process_batch(global_batch: int, flag: str = "--batch-size") -> int:
    """The per-process share of a *global* batch (the repository's batch rule).

    Configs give the paper's global batch, so the recipe (optimizer steps per epoch, the learning
    rate it was tuned for) does not change with the number of GPUs. Each process takes
    `global_batch / world_size`; a batch the world size does not divide is an error naming both.
    Logs the split once on rank 0, so every run's log says which batch it trained with.
    """
    ws = world_size()
    global_batch = int(global_batch)
    if global_batch < 1:
        raise ValueError(f"{flag} {global_batch}: the global batch must be positive")
    if global_batch % ws:
        raise ValueError(f"{flag} {global_batch} is the global batch and must be divisible by the "
                         f"{ws} processes of this run (got {global_batch} / {ws} = {global_batch / ws:g})")
    per = global_batch // ws
    if is_main():
        logging.getLogger("shared.dist").info("%s: global batch %d = %d process(es) x %d", flag, global_batch, ws, per)
    return per
