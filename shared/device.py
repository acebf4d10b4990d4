"""Device selection and mixed precision.

`--device auto` picks CUDA when it is present. Mixed precision follows the repository convention
(ARCHITECTURE.md, Runtime conventions): bf16 autocast on CUDA, plain fp32 on CPU. bf16 has the
exponent range of fp32, so no loss scaling (GradScaler) is needed; `make_scaler` still exists for
scripts that choose fp16 on older GPUs.
"""
from __future__ import annotations

import contextlib
import os

import torch

__all__ = ["resolve_device", "autocast", "make_scaler"]


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


def make_scaler(device: torch.device, dtype: torch.dtype = torch.bfloat16):
    """A GradScaler only where it is useful (fp16 on CUDA); None otherwise."""
    if torch.device(device).type == "cuda" and dtype == torch.float16:
        return torch.amp.GradScaler("cuda")
    return None
