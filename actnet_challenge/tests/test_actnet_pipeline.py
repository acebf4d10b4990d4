"""The toy pipeline: bsnpp's toy data and two short bsnpp runs (their proposal files), the
ensemble, the video classifier and the detections. The packages meet through files only."""
import json
from pathlib import Path

import pytest

from actnet_challenge import eval as actnet_eval
from actnet_challenge import train
from actnet_challenge.build import evaluation_ground_truth
from actnet_challenge.train_classifier import get_args_parser as cls_parser
from actnet_challenge.train_classifier import main as cls_main
from shared import config
from shared.testing import run_script

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """bsnpp's toy data and two proposal files, from bsnpp's own scripts."""
    base = tmp_path_factory.mktemp("actnet")
    data = base / "data"
    done = run_script(ROOT / "bsnpp" / "toy.py", "--out", data, "--videos", "240", cwd=ROOT / "bsnpp")
    assert done.returncode == 0, done.stderr[-3000:]
    props = []
    for cfg in ("toy", "toy_bmn"):
        done = run_script(ROOT / "bsnpp" / "train.py", "--config", f"configs/{cfg}.yaml", "--epochs", "2",
                          "--eval-every", "0", "--device", "cpu", "--toy-root", data, "--toy-videos", "240",
                          "--output-dir", base / "runs", cwd=ROOT / "bsnpp")
        assert done.returncode == 0, done.stderr[-3000:]
        props.append(next((base / "runs" / "bsnpp" / cfg).glob("*/proposals.json")))
    return data, props, base


def _data_args(data):
    return ["--data-root", str(data), "--annotations", "activity_net.v1-3.min.json", "--features", "csv_features"]


def test_classifier_learns_toy_classes(toy, tmp_path):
    data, _, _ = toy
    args = config.parse_args(cls_parser(), [*_data_args(data), "--device", "cpu", "--output-dir", str(tmp_path),
                                            "--cls-epochs", "30", "--hidden", "128"])
    metrics, out = cls_main(args)
    assert out.parents[1] == tmp_path / "actnet_challenge" / "default-classifier"  # a sub-run, no pseudo-paper
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
    assert saved["scored_on"].startswith("validation: the 60 of 60 videos with features")
    assert (run_dir / "ar_an_ensemble.png").stat().st_size > 1000
    # eval.py scores the detection file as it is (the command-line evaluator) to the same numbers
    eargs = config.parse_args(actnet_eval.get_args_parser(), [*_data_args(data), "--detections",
                                                               str(run_dir / "detections.json")])
    again = actnet_eval.main(eargs)
    assert again["detections.json"]["mAP"] == pytest.approx(fused["mAP"], abs=1e-9)


class _Store:
    def __init__(self, have):
        self.have = set(have)

    def has(self, vid):
        return vid in self.have


def test_scored_on_videos_with_features_unless_full_gt(tmp_path):
    gt = {"database": {v: {"subset": s, "duration": 10.0, "annotations": [{"segment": [1, 2], "label": "a"}]}
                       for v, s in [("a", "validation"), ("b", "validation"), ("c", "training")]}}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    args = config.parse_args(train.get_args_parser(), ["--data-root", str(tmp_path)])
    sub, what = evaluation_ground_truth(tmp_path / "gt.json", _Store({"a", "c"}), args)
    assert set(sub["database"]) == {"a", "c"} and "the 1 of 2 videos with features" in what
    args.full_gt = True
    sub, what = evaluation_ground_truth(tmp_path / "gt.json", _Store({"a", "c"}), args)
    assert set(sub["database"]) == {"a", "b", "c"} and "all 2 videos" in what
