"""Device selection and mixed precision.

`--device auto` picks CUDA when it is present. Mixed precision follows the repository convention
(ARCHITECTURE.md, Runtime conventions): bf16 autocast on CUDA, plain fp32 on CPU. bf16 has the
exponent range of fp32, so no loss scaling (GradScaler) is needed.

Precision rule: training autocasts on CUDA by default (`--amp`, on); every evaluation, prediction
and eval.py runs in fp32 unless asked (`--eval-amp` in training scripts, `--amp` in eval scripts),
so reported numbers do not depend on the hardware. Numerically delicate steps inside an autocast
region (box decoding, NMS, proposal selection) leave it explicitly (`fp32`).
"""
from __future__ import annotations

import contextlib
import os

import torch

__all__ = ["resolve_device", "autocast", "use_amp", "fp32"]


def resolve_device(name: str = "auto") -> torch.device:
    """Turn `auto|cpu|cuda|cuda:N` into a device; under torchrun, CUDA means this rank's GPU."""
    name = (name or "auto").lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"--device {name} was asked for but CUDA is not available on this machine")
        if name == "cuda":
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ValueError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N")
    return torch.device(name)


def autocast(device: torch.device, enabled: bool = True, dtype: torch.dtype = torch.bfloat16):
    """bf16 autocast on CUDA; a no-op context on CPU (we train in fp32 there)."""
    device = torch.device(device)
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def use_amp(args, device: torch.device, evaluation: bool = False) -> bool:
    """Whether to autocast: CUDA only; training follows `--amp`, evaluation `--eval-amp` in a
    training script or `--amp` in an eval script (both off by default)."""
    if torch.device(device).type != "cuda":
        return False
    if evaluation and hasattr(args, "eval_amp"):
        return bool(args.eval_amp)
    return bool(getattr(args, "amp", False))


def fp32(device: torch.device):
    """Leave an enclosing autocast region: the block runs in fp32 (cast its inputs with .float())."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.autocast("cuda", enabled=False)
    return torch.autocast("cpu", enabled=False)
