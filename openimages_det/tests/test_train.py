"""End to end on a tiny toy: training, the official files, evaluation, exact resume, two-process DDP."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from openimages_det import eval as eval_script
from openimages_det import train
from openimages_det.oid_eval import map_key
from shared import config
from shared.checkpoint import load_checkpoint
from shared.testing import torchrun

HERE = Path(__file__).resolve().parents[1]


def _argv(tmp: Path, out: str, *extra) -> list:
    return ["--config", str(HERE / "configs" / "toy.yaml"), "--toy-root", str(tmp / "toy"), "--toy-train-images", "24",
            "--toy-val-images", "8", "--toy-test-images", "4", "--output-dir", str(tmp / out), "--batch-size", "4",
            "--epochs", "2", "--lr-steps", "1", "--warmup-iters", "2", "--variants", "concurrent",
            "--baseline-random", "10", "--min-size", "64", "--max-size", "80", "--roi-batch-size", "16",
            "--rpn-pre-nms-train", "100", "--rpn-post-nms-train", "50", "--rpn-pre-nms-test", "100",
            "--rpn-post-nms-test", "50", "--eval-batch-size", "4", "--log-period", "2", *extra]


def _run(argv):
    return train.main(config.parse_args(train.get_args_parser(), argv))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("oid")
    runs = _run(_argv(tmp, "runs"))
    return tmp, runs["concurrent"]


def test_training_writes_the_official_files(trained):
    tmp, (run_dir, results) = trained
    assert run_dir.parent.name == "toy-concurrent"
    for key in ("mAP", "mAP_rare", "mAP_multilabel", "per_class_AP", "baseline_random_mAP"):
        assert key in results
    assert json.loads((run_dir / "results.json").read_text())["mAP"] == results["mAP"]
    assert 0 <= results["mAP"] <= 100 and len(results["per_class_AP"]) == 16
    with open(run_dir / "predictions.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["ImageID", "LabelName", "Score", "XMin", "XMax", "YMin", "YMax"] and len(rows) > 8
    with open(run_dir / "submission.csv") as f:
        sub = list(csv.reader(f))
    assert sub[0] == ["ImageId", "PredictionString"] and len(sub) == 9            # one row per image
    assert len(sub[1][1].split()) % 6 == 0
    with open(run_dir / "metrics.csv") as f:
        first = next(csv.reader(f))
    assert first[0] == map_key() and abs(float(first[1]) * 100 - results["mAP"]) < 1e-9
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert lines and all(torch.isfinite(torch.tensor(x["loss"])) for x in lines)


def test_eval_reproduces_the_training_evaluation(trained):
    tmp, (run_dir, results) = trained
    argv = _argv(tmp, "runs") + ["--checkpoint", str(run_dir / "checkpoint_last.pt"), "--out-dir", str(tmp / "ev")]
    got = eval_script.main(config.parse_args(eval_script.get_args_parser(), argv))[""]
    assert abs(got["mAP"] - results["mAP"]) < 1e-9 and got["mAP_rare"] == results["mAP_rare"]
    # the Challenge test set has no annotation files: every image of the folder is predicted
    (tmp / "toy" / "test-annotations-bbox.csv").unlink()
    test = eval_script.main(config.parse_args(eval_script.get_args_parser(), argv + ["--split", "test"]))[""]
    assert "mAP" not in test and Path(test["submission"]).is_file() and test["images"] == 4


def test_resume_continues_exactly(trained):
    tmp, (run_dir, _) = trained
    _run(_argv(tmp, "resumed", "--epochs", "1"))                 # stops after epoch 0 with its checkpoint
    runs = _run(_argv(tmp, "resumed", "--resume", "auto"))      # continues into epoch 1
    resumed_dir, _ = runs["concurrent"]
    a = load_checkpoint(run_dir / "checkpoint_last.pt")
    b = load_checkpoint(resumed_dir / "checkpoint_last.pt")
    assert a["step"] == b["step"] == 12 and b["next_epoch"] == 2
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert (run_dir / "predictions.csv").read_text() == (resumed_dir / "predictions.csv").read_text()


@pytest.mark.slow
def test_two_process_gloo_ddp(trained):
    tmp, (run_dir, _) = trained
    out = torchrun(HERE / "train.py", *_argv(tmp, "ddp"), nproc=2, cwd=HERE)
    assert out.returncode == 0, out.stderr[-3000:]
    res = sorted((tmp / "ddp" / "openimages_det" / "toy-concurrent").glob("*/results.json"))
    ckpt = load_checkpoint(res[-1].parent / "checkpoint_last.pt")
    assert ckpt["step"] == 12 and len(ckpt["rng"]) == 2                    # 6 steps per epoch, as one process
    with open(res[-1].parent / "submission.csv") as f:
        assert sum(1 for _ in f) == 9                                      # both ranks' images merged
