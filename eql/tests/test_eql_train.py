"""End to end: the real train.py on the toy data (written by the real generator, read by the real
loaders) beats a random-box detector by a clear margin, eval.py reproduces its numbers from the
checkpoint, an interrupted and resumed run ends with the same weights, the last checkpoint is on
disk before the final evaluation, and two-process gloo DDP with repeat-factor sampling runs and
evaluates (shared out over the ranks) what one process finds from the results file."""
import json
from pathlib import Path

import pytest
import torch

from eql import eval as eql_eval
from eql import train
from eql.data import evaluation_gt, load_lvis
from eql.lvis_eval import evaluate as lvis_evaluate
from shared import config
from shared.testing import torchrun

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "eql" / "configs" / "toy.yaml"


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    from eql.toy import make_toy_dataset
    root = tmp_path_factory.mktemp("toy") / "eql"
    make_toy_dataset(root, train_images=300, val_images=60, quiet=True)
    return root


def _args(parser, tmp, toy_root, *extra):
    return config.parse_args(parser, ["--config", str(TOY), "--device", "cpu", "--output-dir", str(tmp),
                                      "--toy-root", str(toy_root), "--toy-train-images", "300",
                                      "--toy-val-images", "60", "--compare", *extra])


def test_short_toy_training_beats_random_boxes_and_eval_reproduces(tmp_path, toy_root):
    args = _args(train.get_args_parser(), tmp_path, toy_root, "--loss", "eql", "--iters", "80", "--lr-steps", "64",
                 "--warmup-iters", "20", "--checkpoint-period", "1000")
    run_dir, metrics = train.main(args)
    res = json.loads((run_dir / "results.json").read_text())
    ap, base = res["metrics"]["bbox"]["AP"], res["metrics"]["baseline_random"]["AP"]
    assert ap >= base + 2.0 and ap >= 20 * max(base, 0.01), (ap, base)
    assert res["loss"] == "eql" and res["metrics"]["images"] == 60
    assert all(res["metrics"]["bbox"][k] is not None for k in ("APr", "APc", "APf", "AR@300"))
    dets = json.loads((run_dir / "lvis_results.json").read_text())
    per_image = {}
    for d in dets:
        per_image[d["image_id"]] = per_image.get(d["image_id"], 0) + 1
        assert set(d) == {"image_id", "category_id", "bbox", "score"} and d["score"] > 1e-4
    assert max(per_image.values()) <= 300
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in lines if "train_total" in r] == [20, 40, 60, 80]
    assert lines[-1]["val_bbox_AP"] == pytest.approx(ap)

    eargs = _args(eql_eval.get_args_parser(), tmp_path, toy_root, "--loss", "eql", "--checkpoint",
                  str(run_dir / "checkpoint_last.pt"), "--out-dir", str(tmp_path / "eval"))
    again = eql_eval.main(eargs)
    assert again["bbox"]["AP"] == pytest.approx(ap, abs=1e-9)
    assert json.loads((tmp_path / "eval" / "results.json").read_text())["iteration"] == 80


def test_resume_continues_to_the_same_weights(tmp_path, toy_root):
    common = ("--loss", "eql", "--lr-steps", "5", "--warmup-iters", "2", "--max-val-images", "4",
              "--checkpoint-period", "3", "--batch-size", "4")
    full_dir, _ = train.main(_args(train.get_args_parser(), tmp_path / "a", toy_root, *common, "--iters", "6"))
    first_dir, _ = train.main(_args(train.get_args_parser(), tmp_path / "b", toy_root, *common, "--iters", "3"))
    assert torch.load(first_dir / "checkpoint_last.pt", weights_only=True)["step"] == 3
    resumed_dir, _ = train.main(_args(train.get_args_parser(), tmp_path / "b", toy_root, *common, "--iters", "6",
                                      "--resume", "auto"))
    assert resumed_dir == first_dir
    a = torch.load(full_dir / "checkpoint_last.pt", weights_only=True)
    b = torch.load(resumed_dir / "checkpoint_last.pt", weights_only=True)
    assert a["step"] == b["step"] == 6
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], atol=1e-6, rtol=0, msg=k)


def test_mask_rcnn_run_writes_mask_results_and_segm_metrics(tmp_path, toy_root):
    run_dir, metrics = train.main(_args(train.get_args_parser(), tmp_path, toy_root, "--arch", "mask_rcnn",
                                        "--mask-head-dim", "16", "--iters", "2", "--batch-size", "2",
                                        "--max-val-images", "3", "--loss", "sigmoid"))
    assert {"bbox", "segm"} <= set(metrics) and metrics["segm"]["AP"] is not None
    dets = json.loads((run_dir / "lvis_results.json").read_text())
    assert dets and all(isinstance(d["segmentation"]["counts"], str) for d in dets)


def test_final_checkpoint_is_saved_before_the_final_evaluation(tmp_path, toy_root, monkeypatch):
    common = ("--loss", "sigmoid", "--iters", "2", "--batch-size", "2", "--warmup-iters", "1",
              "--max-val-images", "3", "--checkpoint-period", "1000")

    def crash(*a, **k):
        raise RuntimeError("evaluation failed")
    monkeypatch.setattr(train, "evaluate_split", crash)
    with pytest.raises(RuntimeError, match="evaluation failed"):
        train.main(_args(train.get_args_parser(), tmp_path, toy_root, *common))
    run_dir = next((tmp_path / "eql" / "toy").iterdir())
    assert torch.load(run_dir / "checkpoint_last.pt", weights_only=True)["step"] == 2
    monkeypatch.undo()
    again, metrics = train.main(_args(train.get_args_parser(), tmp_path, toy_root, *common, "--resume", "auto"))
    assert again == run_dir and metrics["images"] == 3                   # evaluated, nothing trained again
    assert json.loads((run_dir / "results.json").read_text())["metrics"]["bbox"]["AP"] == metrics["bbox"]["AP"]


def test_two_process_ddp_with_repeat_factor_sampling_and_sharded_evaluation(tmp_path, toy_root):
    proc = torchrun(ROOT / "eql" / "train.py", "--config", str(TOY), "--device", "cpu", "--compare", "--loss", "eqlv2",
                    "--arch", "mask_rcnn", "--mask-head-dim", "16", "--iters", "2", "--batch-size", "4",
                    "--warmup-iters", "1", "--repeat-threshold", "0.05", "--max-val-images", "7",
                    "--output-dir", str(tmp_path), "--toy-root", str(toy_root),
                    "--toy-train-images", "300", "--toy-val-images", "60", nproc=2, cwd=ROOT / "eql")
    assert proc.returncode == 0, proc.stderr[-4000:]
    run = next((tmp_path / "eql" / "toy").iterdir())
    res = json.loads((run / "results.json").read_text())
    assert res["metrics"]["images"] == 7 and res["repeat_threshold"] == 0.05
    assert "--batch-size: global batch 4 = 2 process(es) x 2" in (run / "log.txt").read_text()
    ck = torch.load(run / "checkpoint_last.pt", weights_only=True)
    assert ck["model"]["roi_heads.cls_loss.started"].item()     # EQLv2 statistics saved with the model
    # the evaluation shared out over two ranks equals one process evaluating the file both wrote
    lvis = load_lvis(toy_root / "lvis" / "lvis_v1_val.json", keep_raw=True)
    gt = evaluation_gt(lvis, sorted(im["id"] for im in lvis.images)[:7], with_segm=True)
    dets = json.loads((run / "lvis_results.json").read_text())
    assert len(dets) == res["metrics"]["detections"] > 0 and {d["image_id"] for d in dets} <= {
        im["id"] for im in gt["images"]}
    for iou_type in ("bbox", "segm"):
        ref = lvis_evaluate(gt, dets, iou_type)
        for k in ("AP", "APr", "APc", "APf", "AR@300"):
            want = 100 * ref[k] if ref[k] >= 0 else None
            assert res["metrics"][iou_type][k] == pytest.approx(want, abs=1e-9), (iou_type, k)
