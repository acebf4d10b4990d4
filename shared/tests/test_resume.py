"""Kill and resume: a run SIGKILLed after k epochs and restarted with --resume auto ends with
exactly the parameters of the same run left uninterrupted."""
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "shared/tests/tiny_train.py"


def _run(out, *extra):
    env = dict(os.environ, OMP_NUM_THREADS="1", SHARED_NO_PROGRESS="1")
    return subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--epochs", "6",
                           "--output-dir", str(out), "--seed", "3", *extra],
                          env=env, capture_output=True, text=True, timeout=120)


def _final(out):
    runs = sorted((out / "tiny" / "default").iterdir())
    assert len(runs) == 1, runs
    return torch.load(runs[0] / "final.pt", weights_only=True)["model"], runs[0]


def test_killed_run_resumes_exactly(tmp_path):
    full = _run(tmp_path / "a")
    assert full.returncode == 0, full.stderr[-2000:]
    ref, _ = _final(tmp_path / "a")

    killed = _run(tmp_path / "b", "--die-after-epoch", "2")
    assert killed.returncode == -9, (killed.returncode, killed.stderr[-2000:])
    run_dir = next((tmp_path / "b" / "tiny" / "default").iterdir())
    assert not (run_dir / "final.pt").exists()
    resumed = _run(tmp_path / "b", "--resume", "auto")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    got, run_dir2 = _final(tmp_path / "b")
    assert run_dir2 == run_dir  # continued in the same folder
    for k in ref:
        assert torch.isfinite(ref[k]).all() and torch.equal(ref[k], got[k]), k
    epochs = [line for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(epochs) == 6
