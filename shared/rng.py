"""Random-number state: capture, restore, isolate, and keep one state per rank.

Exact resume under DDP needs every rank's own RNG state, not rank 0's copied everywhere: ranks are
seeded with `seed + rank` (different augmentations and dropout masks per rank), so restoring rank
0's state on all of them would silently change the run after a restart. `gather_states` collects
each rank's state into one list (a collective: every rank calls it) that rank 0 writes into the
checkpoint; `restore_states` gives each rank its own entry back.
"""
from __future__ import annotations

import contextlib
import logging
import random

import numpy as np
import torch

from shared import dist

__all__ = ["rng_state", "set_rng_state", "gather_states", "restore_states", "rng_isolated"]

log = logging.getLogger("shared.rng")


def rng_state() -> dict:
    """This process's Python, numpy, torch and (current) CUDA RNG states, as weights_only values."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                  "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda_device"] = torch.cuda.get_rng_state()  # this rank's GPU only
    return state


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` captured (also reads the older all-GPU `cuda` entry)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available():
        if "cuda_device" in state:
            torch.cuda.set_rng_state(state["cuda_device"])
        elif "cuda" in state and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])


def gather_states() -> list[dict]:
    """Every rank's `rng_state()`, in rank order (a collective under torch.distributed)."""
    state = rng_state()
    if not dist.is_dist():
        return [state]
    # all_gather_object pickles: move tensors to plain CPU tensors first (they already are)
    return dist.all_gather_object(state)


def restore_states(states) -> None:
    """Restore this rank's own entry of a `gather_states` list (or a single older dict).

    With a different world size than the checkpoint's, exact resume is impossible: each rank takes
    entry `rank % len(states)` and a warning says so.
    """
    if isinstance(states, dict):  # checkpoints written before per-rank states
        if dist.world_size() > 1:
            log.warning("checkpoint holds one RNG state for all ranks: restoring it on every rank "
                        "(resume is not bit-exact under DDP)")
        set_rng_state(states)
        return
    states = list(states)
    if len(states) != dist.world_size():
        log.warning("checkpoint has RNG states of %d ranks, this run has %d: resume is not exact",
                    len(states), dist.world_size())
    set_rng_state(states[dist.rank() % len(states)])


@contextlib.contextmanager
def rng_isolated(device="cpu"):
    """A block in which evaluation (BN re-calibration, a baseline) may draw random numbers without
    moving the training RNG. DataLoader iterators draw a seed from the global generator, samplers
    and augmentations draw too: without this, `--eval-every` would change the trained weights and a
    resumed run would differ from an uninterrupted one. Python, numpy, torch and the device's CUDA
    generator are all restored on exit."""
    device = torch.device(device)
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    py, npy = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)
