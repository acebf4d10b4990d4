"""The toy pipeline: bsnpp's toy data and two short bsnpp runs (their proposal files), the
ensemble, the video classifier and the detections. The packages meet through files only."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from actnet_challenge import train
from actnet_challenge.train_classifier import get_args_parser as cls_parser
from actnet_challenge.train_classifier import main as cls_main
from shared import config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """bsnpp's toy data and two proposal files, from bsnpp's own scripts."""
    base = tmp_path_factory.mktemp("actnet")
    env = dict(os.environ, OMP_NUM_THREADS="1", SHARED_NO_PROGRESS="1")
    data = base / "data"
    subprocess.run([sys.executable, "toy.py", "--out", str(data), "--videos", "240"], cwd=ROOT / "bsnpp",
                   check=True, env=env, capture_output=True)
    props = []
    for cfg in ("toy", "toy_bmn"):
        subprocess.run([sys.executable, "train.py", "--config", f"configs/{cfg}.yaml", "--epochs", "3",
                        "--eval-every", "0", "--device", "cpu", "--toy-root", str(data), "--toy-videos", "240",
                        "--output-dir", str(base / "runs")], cwd=ROOT / "bsnpp", check=True, env=env,
                       capture_output=True)
        props.append(next((base / "runs" / "bsnpp" / cfg).glob("*/proposals.json")))
    return data, props, base


def _data_args(data):
    return ["--data-root", str(data), "--annotations", "activity_net.v1-3.min.json", "--features", "csv_features"]


def test_classifier_learns_toy_classes(toy, tmp_path):
    data, _, _ = toy
    args = config.parse_args(cls_parser(), [*_data_args(data), "--device", "cpu", "--output-dir", str(tmp_path),
                                            "--cls-epochs", "30", "--hidden", "128"])
    metrics, out = cls_main(args)
    assert metrics["top1"] >= metrics["chance_top1"] + 20, metrics  # 5 classes: chance 20 %
    assert metrics["top3"] >= metrics["top1"]
    scores = json.loads(out.read_text())["results"]
    one = next(iter(scores.values()))
    assert len(one) == 5 and one[0]["score"] >= one[-1]["score"]


def test_pipeline_fusion_at_least_top1_baseline(toy, tmp_path):
    data, props, _ = toy
    args = config.parse_args(train.get_args_parser(), [
        "--config", str(ROOT / "actnet_challenge/configs/toy.yaml"), *_data_args(data), "--device", "cpu",
        "--output-dir", str(tmp_path), "--proposals", *map(str, props)])
    run_dir, res = train.main(args)
    det = res["detections"]
    fused = next(v for k, v in det.items() if k.startswith("fused"))
    base = det["top-1 label baseline"]
    assert fused["mAP"] >= base["mAP"], det
    assert fused["mAP"] > 5.0
    assert set(res["proposals"]) >= {"fused (union)"} and len(res["proposals"]) == 3
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["config"] == "toy" and saved["detections"].keys() == det.keys()
    d = json.loads((run_dir / "detections.json").read_text())
    assert all("label" in x for v in d["results"].values() for x in v)
