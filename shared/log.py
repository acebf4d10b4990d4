"""Rank-aware logging, progress, JSON-lines metrics and run bookkeeping.

- `setup_logging`: rank 0 logs INFO to stdout (and `log.txt` in the run folder); other ranks log
  only WARNING and above, to stderr with their rank in the prefix, so errors from any rank are seen.
- `SmoothedValue` / `MetricLogger`: windowed meters (as in torchvision's references) and an iterator
  wrapper that shows a tqdm bar on rank 0 (ETA, it/s, meters, max CUDA memory).
- `JsonlWriter`: `metrics.jsonl`, one JSON object per line, written by rank 0 only.
- `run_info`: git SHA and dirty flag, command line, versions, world size and the resolved config.
- `TensorBoard`: optional; a no-op when tensorboard is not installed.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import platform
import subprocess
import sys
from collections import defaultdict, deque
from pathlib import Path

import torch

from shared import dist

__all__ = ["setup_logging", "SmoothedValue", "MetricLogger", "JsonlWriter", "run_info", "TensorBoard"]

_FMT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(run_dir: str | os.PathLike | None = None, level: int = logging.INFO) -> logging.Logger:
    """Configure the root logger for this rank (idempotent)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_shared_log", False):
            root.removeHandler(h)
    if dist.is_main():
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter(_FMT, "%H:%M:%S"))
        handler.setLevel(level)
        handlers = [handler]
        if run_dir is not None:
            Path(run_dir).mkdir(parents=True, exist_ok=True)
            fh = logging.FileHandler(Path(run_dir) / "log.txt")
            fh.setFormatter(logging.Formatter(_FMT))
            fh.setLevel(level)
            handlers.append(fh)
        root.setLevel(level)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"[rank {dist.rank()}] " + _FMT, "%H:%M:%S"))
        handler.setLevel(logging.WARNING)
        handlers = [handler]
        root.setLevel(logging.WARNING)
    for h in handlers:
        h._shared_log = True
        root.addHandler(h)
    return root


class SmoothedValue:
    """A series of values: the median/average over a window and the global average."""

    def __init__(self, window_size: int = 20, fmt: str = "{median:.4f} ({global_avg:.4f})"):
        self.deque = deque(maxlen=window_size)
        self.total = 0.0
        self.count = 0
        self.fmt = fmt

    def update(self, value: float, n: int = 1) -> None:
        value = float(value)
        self.deque.append(value)
        self.count += n
        self.total += value * n

    @property
    def median(self) -> float:
        return float(torch.tensor(list(self.deque)).median().item()) if self.deque else math.nan

    @property
    def avg(self) -> float:
        return sum(self.deque) / len(self.deque) if self.deque else math.nan

    @property
    def global_avg(self) -> float:
        return self.total / self.count if self.count else math.nan

    @property
    def max(self) -> float:
        return max(self.deque) if self.deque else math.nan

    @property
    def value(self) -> float:
        return self.deque[-1] if self.deque else math.nan

    def __str__(self) -> str:
        return self.fmt.format(median=self.median, avg=self.avg, global_avg=self.global_avg,
                               max=self.max, value=self.value)


class MetricLogger:
    """Named meters plus `log_every`, an iterator wrapper with a tqdm bar on rank 0."""

    def __init__(self, delimiter: str = "  "):
        self.meters: dict[str, SmoothedValue] = defaultdict(SmoothedValue)
        self.delimiter = delimiter

    def update(self, n: int = 1, **kwargs) -> None:
        for k, v in kwargs.items():
            if isinstance(v, torch.Tensor):
                v = v.item()
            self.meters[k].update(v, n=n)

    def averages(self) -> dict[str, float]:
        return {k: m.global_avg for k, m in self.meters.items()}

    def __str__(self) -> str:
        return self.delimiter.join(f"{k}: {m}" for k, m in self.meters.items())

    def log_every(self, iterable, print_freq: int = 10, header: str = "", total: int | None = None):
        """Yield from `iterable`; rank 0 shows progress (refreshing meters every `print_freq`)."""
        from tqdm.auto import tqdm

        if total is None:
            try:
                total = len(iterable)
            except TypeError:
                total = None
        disable = not dist.is_main() or os.environ.get("SHARED_NO_PROGRESS") == "1"
        bar = tqdm(iterable, total=total, desc=header, disable=disable, dynamic_ncols=True,
                   mininterval=1.0, file=sys.stderr)
        for i, obj in enumerate(bar):
            yield obj
            if not disable and (i % max(1, print_freq) == 0 or (total and i == total - 1)):
                post = {k: f"{m.median:.4g}" for k, m in self.meters.items()}
                if torch.cuda.is_available() and torch.cuda.is_initialized():
                    post["mem"] = f"{torch.cuda.max_memory_allocated() / 2**20:.0f}M"
                bar.set_postfix(post, refresh=False)
        bar.close()


class JsonlWriter:
    """Append one JSON object per line to `path` (rank 0 only; other ranks hold a no-op)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.enabled = dist.is_main()
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        line = json.dumps(record, default=_json_default, allow_nan=True)
        with open(self.path, "a") as f:
            f.write(line + "\n")
            f.flush()


def _json_default(o):
    if isinstance(o, torch.Tensor):
        return o.item() if o.numel() == 1 else o.tolist()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def _git(*cmd: str) -> str | None:
    try:
        return subprocess.run(["git", *cmd], capture_output=True, text=True, timeout=10,
                              cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def run_info(args=None, run_dir: str | os.PathLike | None = None) -> dict:
    """What a run was: code version, command, software, world size, config. Written by rank 0 as
    `run_info.json` in the run folder and logged."""
    import torchvision

    from shared.config import to_plain

    sha = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    info = {
        "time": _dt.datetime.now().isoformat(timespec="seconds"),
        "git_sha": sha,
        "git_dirty": bool(status) if sha else None,
        "argv": sys.argv,
        "host": platform.node(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available() else [],
        "world_size": dist.world_size(),
        "config": {k: to_plain(v) for k, v in sorted(vars(args).items())} if args is not None else None,
    }
    if run_dir is not None and dist.is_main():
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        (Path(run_dir) / "run_info.json").write_text(json.dumps(info, indent=2))
    logging.getLogger("shared.log").info(
        "run: git %s%s, torch %s, world size %d", (sha or "?")[:10],
        " (dirty)" if info["git_dirty"] else "", torch.__version__, info["world_size"])
    return info


class TensorBoard:
    """SummaryWriter on rank 0 when tensorboard is installed; otherwise every call is a no-op."""

    def __init__(self, run_dir: str | os.PathLike, enabled: bool = True):
        self.writer = None
        if enabled and dist.is_main():
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                return
            self.writer = SummaryWriter(log_dir=str(run_dir))

    def scalars(self, values: dict, step: int, prefix: str = "") -> None:
        if self.writer is None:
            return
        for k, v in values.items():
            if isinstance(v, (int, float)):
                self.writer.add_scalar(f"{prefix}{k}", v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
