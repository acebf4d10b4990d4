"""The scripts end to end on a tiny toy tree: clothes detector -> box file -> train.py -> eval.py
(Euclidean, XQDA + re-ranking, both camera rules); kill-and-resume equals an uninterrupted run;
two-process gloo DDP (global triplet mining, then train.py under torchrun)."""
import json
from pathlib import Path

import numpy as np
import torch

from cocas_reid import detect_clothes, train
from cocas_reid import eval as cocas_eval
from cocas_reid.data import load_dataset
from shared.testing import torchrun

HERE = Path(__file__).resolve().parent


def test_detector_train_and_eval_share_the_box_file(tmp_path, tiny_toy, tiny):
    box_file = detect_clothes.main(tiny.args(detect_clothes.get_args_parser(), tmp_path))
    boxes = json.loads(box_file.read_text())
    gallery = load_dataset("cocas", tiny_toy).splits["gallery"].files
    assert boxes["source"] == "detector" and set(boxes["boxes"]) == set(gallery)
    assert set(boxes["fallback"]) <= set(gallery) and set(boxes["scores"]) == set(gallery)
    report = json.loads((box_file.parent / "results.json").read_text())
    assert report["gallery_with_parsing"] == len(gallery) and 0.0 <= report["mean_iou"] <= 1.0
    assert (box_file.parent / "checkpoint_last.pt").is_file()

    outcome = train.main(tiny.args(train.get_args_parser(), tmp_path, "--epochs", "2", "--branches", "bc"))
    run_dir, res = outcome["bc"]
    assert run_dir.parent.name == "toy-bcnet" and res["clothes_source"] == "detector"
    assert len(list(box_file.parent.parent.iterdir())) == 1  # the existing box file was used, no second detector run
    feats = np.load(run_dir / "features.npz")
    q, g = load_dataset("cocas", tiny_toy).splits["query"], load_dataset("cocas", tiny_toy).splits["gallery"]
    assert feats["qf"].shape == (len(q), 32) and feats["gf"].shape == (len(g), 32)
    np.testing.assert_array_equal(feats["g_pids"], g.pids)
    assert [json.loads(x)["epoch"] for x in (run_dir / "metrics.jsonl").read_text().splitlines()] == [0, 1]
    keys = {"mAP", "rank1", "rank5", "rank10", "rank20", "mINP", "num_valid_query", "distance", "rerank", "same_camera_rule"}
    assert keys <= set(res) and res["num_valid_query"] > 0

    again = cocas_eval.main(tiny.args(cocas_eval.get_args_parser(), tmp_path, "--branches", "bc"))
    assert again["bc"]["mAP"] == res["mAP"] and again["bc"]["rank1"] == res["rank1"]  # same weights, same features
    other = cocas_eval.main(tiny.args(cocas_eval.get_args_parser(), tmp_path, "--branches", "bc",
                                      "--distance", "xqda", "--rerank", "--same-camera-rule", "none"))["bc"]
    saved = json.loads((run_dir / "eval-xqda-rerank-none" / "results.json").read_text())
    assert saved["mAP"] == other["mAP"] and (saved["distance"], saved["rerank"], saved["same_camera_rule"]) == ("xqda", True, "none")
    # without the camera rule no gallery image is dropped: every query with a gallery identity is valid
    assert saved["num_valid_query"] == int(np.isin(q.pids, g.pids).sum())


def _model_state(out_dir: Path, run: str) -> dict:
    runs = sorted((out_dir / "cocas_reid" / run).iterdir())
    assert len(runs) == 1, runs
    return torch.load(runs[0] / "checkpoint_last.pt", weights_only=True)


def test_resumed_run_ends_where_an_uninterrupted_run_does(tmp_path, tiny_toy, tiny):
    parser = train.get_args_parser()
    base = ("--branches", "bf", "--clothes-source", "parsing")
    train.main(tiny.args(parser, tmp_path / "a", *base, "--epochs", "3"))
    train.main(tiny.args(parser, tmp_path / "b", *base, "--epochs", "2"))  # stops after epoch 1
    train.main(tiny.args(parser, tmp_path / "b", *base, "--epochs", "3", "--resume", "auto"))
    ref, got = _model_state(tmp_path / "a", "toy-bf"), _model_state(tmp_path / "b", "toy-bf")
    assert got["epoch"] == ref["epoch"] == 2
    for k, v in ref["model"].items():
        assert torch.equal(v, got["model"][k]), k
    run_dir = next((tmp_path / "b" / "cocas_reid" / "toy-bf").iterdir())
    assert [json.loads(x)["epoch"] for x in (run_dir / "metrics.jsonl").read_text().splitlines()] == [0, 1, 2]


def test_two_process_ddp(tmp_path, tiny_toy, tiny):
    r = torchrun(HERE / "ddp_check.py", "--config", tiny.config, "--output-dir", tmp_path, "--toy-root", tiny_toy, *tiny.flags,
                 "--epochs", "1", "--branches", "bc", "--clothes-source", "parsing", timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("global triplet ok") == 2
    res = json.loads(next((tmp_path / "cocas_reid" / "toy-bcnet").glob("*/results.json")).read_text())
    assert res["num_valid_query"] > 0 and 0 <= res["mAP"] <= 100
