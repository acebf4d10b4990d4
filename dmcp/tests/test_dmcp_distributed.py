"""A killed search resumes to the same weights, alphas and counters as an uninterrupted one; a
two-process gloo search (torchrun) runs, validates every image once and lands in its band."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dmcp import engine, prune
from shared import config

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "dmcp" / "configs" / "toy.yaml"


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    from dmcp.toy import make_toy_dataset
    return make_toy_dataset(tmp_path_factory.mktemp("toy") / "dmcp", train_per_class=60, val_per_class=20)


def _args(parser, out, root, *extra):
    return config.parse_args(parser, ["--config", str(TOY), "--device", "cpu", "--output-dir", str(out),
                                      "--toy-root", str(root), "--toy-train-per-class", "60",
                                      "--toy-val-per-class", "20", "--batch-size", "32", *extra])


def test_killed_search_resumes_to_the_same_state(tmp_path, toy_root, monkeypatch):
    common = ("--epochs", "2", "--stage1-fraction", "0.5", "--no-then-retrain", "--no-export-program",
              "--ds-samples", "0", "--toy-train-per-class", "20", "--val-every", "1")
    full_dir, _ = prune.main(_args(prune.get_args_parser(), tmp_path / "a", toy_root, *common))

    real = engine.search_one_epoch
    calls = []

    def dies_in_second_epoch(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real(*a, **k)

    monkeypatch.setattr(prune, "search_one_epoch", dies_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        prune.main(_args(prune.get_args_parser(), tmp_path / "b", toy_root, *common))
    monkeypatch.setattr(prune, "search_one_epoch", real)
    resumed_dir, _ = prune.main(_args(prune.get_args_parser(), tmp_path / "b", toy_root, *common, "--resume", "auto"))
    a = torch.load(full_dir / "checkpoint_last.pt", weights_only=True)
    b = torch.load(resumed_dir / "checkpoint_last.pt", weights_only=True)
    assert a["step"] == b["step"] and a["search"]["random_prob"] == b["search"]["random_prob"]
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], atol=1e-6, rtol=0, msg=k)
    assert json.loads((full_dir / "arch.json").read_text())["gates"] == \
        json.loads((resumed_dir / "arch.json").read_text())["gates"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_search(tmp_path, toy_root):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
           str(_free_port()), str(ROOT / "dmcp" / "prune.py"), "--config", str(TOY), "--device", "cpu",
           "--epochs", "2", "--batch-size", "16", "--output-dir", str(tmp_path), "--toy-root", str(toy_root),
           "--toy-train-per-class", "60", "--toy-val-per-class", "20", "--no-then-retrain",
           "--no-export-program", "--ds-samples", "0"]
    env = dict(os.environ, OMP_NUM_THREADS="1", SHARED_NO_PROGRESS="1")
    proc = subprocess.run(cmd, cwd=ROOT / "dmcp", env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    run = next((tmp_path / "dmcp" / "toy").iterdir())
    res = json.loads((run / "results.json").read_text())
    assert 0.95 * res["target_mflops"] <= res["mflops"] <= res["target_mflops"]
    rec = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rec) == 2 and rec[-1]["val_images"] == 200  # every validation image once across 2 ranks
    assert rec[-1]["train_stage"] == 2 and torch.isfinite(torch.tensor(rec[-1]["train_budget"]))
