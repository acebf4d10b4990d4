"""Helpers for the packages' tests: launching an entry script under torchrun on CPU.

`torchrun --standalone` lets the rendezvous bind a free port itself, so two test processes never
race for a port picked in advance (picking a "free" port and passing it to torchrun fails under
load when another job takes it in between).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["torchrun", "run_script", "subprocess_env"]


def subprocess_env(**extra) -> dict:
    """The environment of a test subprocess: one thread per process, no progress bars."""
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", SHARED_NO_PROGRESS="1",
                **{k: str(v) for k, v in extra.items()})


def torchrun(script: str | os.PathLike, *args: str, nproc: int = 2, cwd=None, timeout: float = 600,
             env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `script args...` under `torchrun --standalone --nproc_per_node nproc` and return the
    completed process (stdout/stderr captured as text); the caller asserts on `returncode`."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           str(script), *map(str, args)]
    for attempt in range(2):
        proc = subprocess.run(cmd, cwd=str(cwd) if cwd else None, env=env or subprocess_env(),
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode == 0 or GLOO_ABORT not in proc.stderr or attempt == 1:
            return proc
        print(f"torchrun {Path(script).name}: a rank aborted inside the C++ runtime ({GLOO_ABORT!r}); "
              "running it once more", file=sys.stderr)
    return proc


# A rank killed by std::terminate in PyTorch's C++ layer (gloo threads), not by a Python error. Seen once
# in a loaded CI run (2 cores, pytest -n 2, at the start of the suite) and not reproduced in 16 idle
# runs of the same script: `torchrun` retries that signature once; any Python failure is returned as is.
GLOO_ABORT = "terminate called without an active exception"


def run_script(script: str | os.PathLike, *args: str, cwd=None, timeout: float = 600,
               env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python script args...` in a fresh process (a kill-and-resume test needs one)."""
    cmd = [sys.executable, str(Path(script)), *map(str, args)]
    return subprocess.run(cmd, cwd=str(cwd) if cwd else None, env=env or subprocess_env(), capture_output=True,
                          text=True, timeout=timeout)
