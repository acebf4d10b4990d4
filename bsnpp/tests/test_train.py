"""End-to-end: the real train.py on the toy data (written by the real generator, read by the real
loaders), kill-free resume, a two-process DDP step, and eval.py on the checkpoint."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bsnpp import eval as bsn_eval
from bsnpp import train
from shared import config

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "bsnpp" / "configs" / "toy.yaml"


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    from bsnpp.toy import make_toy_dataset
    root = tmp_path_factory.mktemp("toy") / "bsnpp"
    make_toy_dataset(root, videos=240, channels=32)
    return root


def _args(parser, tmp, toy_root, *extra):
    return config.parse_args(parser, ["--config", str(TOY), "--device", "cpu", "--output-dir", str(tmp),
                                      "--toy-root", str(toy_root), "--toy-videos", "240", *extra])


def test_short_training_beats_random_proposals_by_15_auc(tmp_path, toy_root):
    args = _args(train.get_args_parser(), tmp_path, toy_root, "--epochs", "4", "--eval-every", "0")
    run_dir, metrics = train.main(args)
    res = json.loads((run_dir / "results.json").read_text())
    auc, base = res["metrics"]["AUC"], res["baseline_random"]["AUC"]
    assert auc >= base + 15, (auc, base)
    assert res["metrics"]["AR@100"] > res["baseline_random"]["AR@100"]
    sub = json.loads((run_dir / "proposals.json").read_text())
    assert len(sub["results"]) == res["metrics"]["videos"]
    some = next(iter(sub["results"].values()))
    assert 0 < len(some) <= 100 and all(p["segment"][0] <= p["segment"][1] for p in some)
    assert (run_dir / "ar_an.png").stat().st_size > 1000
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [0, 1, 2, 3] and "val_AUC" in lines[-1]

    # eval.py on the checkpoint reproduces the final numbers
    eargs = _args(bsn_eval.get_args_parser(), tmp_path, toy_root, "--checkpoint",
                  str(run_dir / "checkpoint_last.pt"), "--out-dir", str(tmp_path / "eval"))
    again = bsn_eval.main(eargs)
    assert again["AUC"] == pytest.approx(auc, abs=1e-9)
    assert json.loads((tmp_path / "eval" / "results.json").read_text())["metrics"]["AUC"] == pytest.approx(auc)


def test_resume_continues_to_the_same_weights(tmp_path, toy_root):
    common = ("--epochs", "2", "--eval-every", "0", "--toy-videos", "240")
    full_dir, _ = train.main(_args(train.get_args_parser(), tmp_path / "a", toy_root, *common))
    # a run that stopped after epoch 0 (same seed), then resumed
    first_dir, _ = train.main(_args(train.get_args_parser(), tmp_path / "b", toy_root, "--epochs", "1",
                                    "--eval-every", "0"))
    ck = torch.load(first_dir / "checkpoint_last.pt", weights_only=True)
    assert ck["epoch"] == 0
    resumed_dir, _ = train.main(_args(train.get_args_parser(), tmp_path / "b", toy_root, *common, "--resume", "auto"))
    assert resumed_dir == first_dir
    a = torch.load(full_dir / "checkpoint_last.pt", weights_only=True)["model"]
    b = torch.load(resumed_dir / "checkpoint_last.pt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0, msg=k)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_training_step(tmp_path, toy_root):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
           str(_free_port()), str(ROOT / "bsnpp" / "train.py"), "--config", str(TOY), "--device", "cpu",
           "--epochs", "1", "--eval-every", "0", "--batch-size", "8", "--output-dir", str(tmp_path),
           "--toy-root", str(toy_root), "--toy-videos", "240"]
    env = dict(os.environ, OMP_NUM_THREADS="1", SHARED_NO_PROGRESS="1")
    proc = subprocess.run(cmd, cwd=ROOT / "bsnpp", env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    run = next((tmp_path / "bsnpp" / "toy").iterdir())
    res = json.loads((run / "results.json").read_text())
    assert res["metrics"]["videos"] == 60  # every validation video evaluated once across 2 ranks
    rec = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rec) == 1 and torch.isfinite(torch.tensor(rec[0]["train_total"]))
