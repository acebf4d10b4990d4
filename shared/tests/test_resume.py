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
                          env=env, capture_output=True, text=True, timeout=600)


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


def test_killed_ddp_run_resumes_exactly_on_both_ranks(tmp_path):
    """Two gloo ranks, each with its own augmentation and dropout draws: kill after epoch 1, resume;
    the final parameters equal an uninterrupted two-rank run's (each rank restored its own RNG)."""
    from shared.testing import torchrun

    base = ["--device", "cpu", "--epochs", "4", "--seed", "3", "--batch-size", "16"]
    full = torchrun(SCRIPT, *base, "--output-dir", tmp_path / "a", timeout=300)
    assert full.returncode == 0, full.stderr[-3000:]
    ref, _ = _final(tmp_path / "a")
    killed = torchrun(SCRIPT, *base, "--output-dir", tmp_path / "b", "--die-after-epoch", "1", timeout=300)
    assert killed.returncode != 0
    resumed = torchrun(SCRIPT, *base, "--output-dir", tmp_path / "b", "--resume", "auto", timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    got, run_dir = _final(tmp_path / "b")
    state = torch.load(run_dir / "checkpoint_last.pt", weights_only=True)
    assert len(state["rng"]) == 2 and not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])
    for k in ref:
        assert torch.equal(ref[k], got[k]), k
