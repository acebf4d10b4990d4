"""End-to-end: the real train.py on the toy data (written by the real generator, read by the real
loaders), kill-free resume, a two-process DDP step, and eval.py on the checkpoint."""
import json
from pathlib import Path

import pytest
import torch

from bsnpp import eval as bsn_eval
from bsnpp import train
from shared import config
from shared.testing import torchrun

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
    assert auc >= res["baseline_prior"]["AUC"] + 10, res  # features add more than the dataset's statistics
    sub = json.loads((run_dir / "proposals.json").read_text())
    assert len(sub["results"]) == res["metrics"]["videos"]
    some = next(iter(sub["results"].values()))
    assert 0 < len(some) <= 100 and all(p["segment"][0] <= p["segment"][1] for p in some)
    assert (run_dir / "ar_an.png").stat().st_size > 1000 and (run_dir / "ar_an_baselines.png").stat().st_size > 1000
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [0, 1, 2, 3] and "val_AUC" in lines[-1]
    assert lines[0]["steps"] == 180 // 16  # 240 toy videos, 3:1 split, global batch 16

    # eval.py on the checkpoint reproduces the final numbers (and its baselines)
    eargs = _args(bsn_eval.get_args_parser(), tmp_path, toy_root, "--checkpoint",
                  str(run_dir / "checkpoint_last.pt"), "--out-dir", str(tmp_path / "eval"))
    again = bsn_eval.main(eargs)
    assert again["AUC"] == pytest.approx(auc, abs=1e-9)
    saved = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert saved["metrics"]["AUC"] == pytest.approx(auc)
    assert saved["baseline_prior"]["AUC"] == pytest.approx(res["baseline_prior"]["AUC"])
    # ... and scores a proposal file the same way (the command-line evaluator)
    pargs = _args(bsn_eval.get_args_parser(), tmp_path, toy_root, "--proposals", str(run_dir / "proposals.json"),
                  "--out-dir", str(tmp_path / "file"))
    assert bsn_eval.main(pargs)["AUC"] == pytest.approx(auc, abs=1e-9)
    assert (tmp_path / "file" / "ar_an.png").is_file()


def test_resume_continues_to_the_same_weights(tmp_path, toy_root):
    small = ("--hidden-1d", "32", "--hidden-2d", "16", "--hidden-3d", "32", "--cbg-width", "16", "--num-sample", "8")
    common = ("--epochs", "2", "--eval-every", "0", *small)
    full_dir, _ = train.main(_args(train.get_args_parser(), tmp_path / "a", toy_root, *common))
    # a run that stopped after epoch 0 (same seed), then resumed
    first_dir, _ = train.main(_args(train.get_args_parser(), tmp_path / "b", toy_root, "--epochs", "1",
                                    "--eval-every", "0", *small))
    ck = torch.load(first_dir / "checkpoint_last.pt", weights_only=True)
    assert ck["epoch"] == 0
    resumed_dir, _ = train.main(_args(train.get_args_parser(), tmp_path / "b", toy_root, *common, "--resume", "auto"))
    assert resumed_dir == first_dir
    a = torch.load(full_dir / "checkpoint_last.pt", weights_only=True)["model"]
    b = torch.load(resumed_dir / "checkpoint_last.pt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0, msg=k)


def test_two_processes_take_the_global_batch_and_the_same_steps(tmp_path, toy_root):
    """--batch-size is the global batch: 2 processes x 8 take as many optimizer steps per epoch as
    1 process x 16 (the single-process count is asserted in the first test), and the log says so."""
    proc = torchrun(ROOT / "bsnpp" / "train.py", "--config", TOY, "--device", "cpu", "--epochs", "1",
                    "--eval-every", "0", "--batch-size", "16", "--output-dir", tmp_path, "--toy-root", toy_root,
                    "--toy-videos", "240", cwd=ROOT / "bsnpp")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "global batch 16 = 2 process(es) x 8" in proc.stdout + proc.stderr
    run = next((tmp_path / "bsnpp" / "toy").iterdir())
    res = json.loads((run / "results.json").read_text())
    assert res["metrics"]["videos"] == 60  # every validation video evaluated once across 2 ranks
    rec = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rec) == 1 and torch.isfinite(torch.tensor(rec[0]["train_total"]))
    assert rec[0]["steps"] == 180 // 16
