"""Checkpoints: atomic writes, safe loading, resume.

A checkpoint is a plain dict of state dicts (of the unwrapped model), plain Python values and
tensors. It is written atomically (a temporary file in the same folder, fsync, rename), so a crash
mid-write leaves the previous checkpoint intact, and it is read with `torch.load(weights_only=True)`,
which refuses arbitrary pickled objects: a checkpoint from an untrusted source cannot run code.
"""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import torch

from shared.config import to_plain
from shared.dist import is_main, unwrap
from shared.rng import gather_states, restore_states

__all__ = [
    "CheckpointError", "save_checkpoint", "load_checkpoint", "latest_checkpoint",
    "training_state", "resume",
]


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used, with the file and the reason."""


def save_checkpoint(state: dict, path: str | os.PathLike, main_only: bool = True) -> Path | None:
    """Write `state` to `path` atomically; only rank 0 writes unless `main_only=False`."""
    if main_only and not is_main():
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows within one filesystem
    finally:
        if tmp.exists():
            tmp.unlink()
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
    return path


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load with `weights_only=True`; anything but tensors and plain values is refused clearly."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path}: refused to load: it holds objects other than tensors, state dicts and plain "
            f"Python values (loading it would execute arbitrary code). Re-save it as a plain dict "
            f"of state_dicts. Detail: {str(e).splitlines()[0]}") from None
    except (RuntimeError, EOFError, OSError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from None
    return obj


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """`checkpoint_last.pt` of a run folder, else the highest-numbered `checkpoint_<n>.pt`."""
    run_dir = Path(run_dir)
    last = run_dir / "checkpoint_last.pt"
    if last.is_file():
        return last
    numbered = []
    for p in run_dir.glob("checkpoint_*.pt"):
        m = re.fullmatch(r"checkpoint_(\d+)\.pt", p.name)
        if m:
            numbered.append((int(m.group(1)), p))
    return max(numbered)[1] if numbered else None


def training_state(model, optimizer=None, scheduler=None, scaler=None, *, epoch: int, step: int = 0,
                   args=None, **extra) -> dict:
    """The dict a training loop saves: unwrapped model, optimizer, scheduler, scaler, counters,
    every rank's RNG states (`rng`: a list in rank order) and the resolved arguments (so a
    checkpoint says how it was made).

    A collective under torch.distributed (the RNG states are gathered): call it on every rank,
    then `save_checkpoint` writes on rank 0 only.
    """
    state = {
        "model": unwrap(model).state_dict(),
        "epoch": int(epoch),
        "step": int(step),
        "rng": gather_states(),
    }
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    if args is not None:
        state["args"] = to_plain(vars(args) if hasattr(args, "__dict__") else dict(args))
    state.update(extra)
    return state


def resume(path, model, optimizer=None, scheduler=None, scaler=None, map_location="cpu",
           restore_rng: bool = True) -> dict:
    """Load a checkpoint written by `training_state` into the given objects; returns the dict.

    The next epoch to run is `ckpt["epoch"] + 1` when the checkpoint was saved at the end of
    epoch `epoch` (the convention of `training_state` callers here).
    """
    ckpt = load_checkpoint(path, map_location=map_location)
    if "model" not in ckpt:
        raise CheckpointError(f"{path}: no 'model' entry (keys: {sorted(ckpt)[:10]})")
    unwrap(model).load_state_dict(ckpt["model"])
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        if obj is not None:
            if name not in ckpt:
                raise CheckpointError(f"{path}: cannot resume the {name}: the checkpoint has none")
            obj.load_state_dict(ckpt[name])
    if restore_rng and "rng" in ckpt:
        restore_states(ckpt["rng"])  # this rank's own state
    return ckpt
