"""End to end on the toy data: training beats chance by a margin and prunes edges, the run's files,
eval.py, kill-and-resume across the pruning step, and two-process gloo DDP."""
import json

import pytest
import torch

from shared import config
from shared.testing import run_script, torchrun
from topo_connectivity import build_from_graph, toy
from topo_connectivity import eval as eval_script
from topo_connectivity import train as train_script
from topo_connectivity.train import HERE

TINY = ["--model", "toponet", "--channels", "8", "--nodes", "3", "4", "4", "--stem-strides", "1", "1",
        "--input-size", "32", "--test-resize", "32", "--rrc-min-scale", "0.35", "--workers", "0", "--threads", "1",
        "--print-freq", "100", "--lr-schedule", "cosine", "--lr", "0.05", "--weight-decay", "5e-5",
        "--finetune-lr", "0.01", "--device", "cpu"]


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    toy.make_toy_dataset(root, det_train=160, det_val=30)
    return root


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy_small")
    toy.make_toy_dataset(root, train_per_class=20, val_per_class=10, det_train=4, det_val=2)
    return root


def _args(parser, argv):
    return config.parse_args(parser, argv)


@pytest.fixture(scope="module")
def learned_run(toy_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    argv = ["--config", str(HERE / "configs" / "toy.yaml"), "--toy-root", str(toy_root), "--output-dir", str(out),
            *TINY, "--batch-size", "32", "--epochs", "3", "--finetune-epochs", "1", "--l1", "0.03",
            "--prune-threshold", "0.15", "--eval-every", "100"]
    run_dir, metrics = train_script.main(_args(train_script.get_args_parser(), argv))
    return run_dir, metrics, out


def test_toy_training_beats_chance_and_prunes(learned_run):
    run_dir, metrics, _ = learned_run
    results = json.loads((run_dir / "results.json").read_text())
    assert results["top1"] >= 40.0, results  # chance is 10 %
    assert results["edge_sparsity"] > 0 and results["edges_kept"] < results["edges_total"]
    assert results["edge_sparsity"] == pytest.approx(1 - results["edges_kept"] / results["edges_total"])
    for key in ("top1", "top5", "madds", "params", "wiring", "edges_total", "edges_kept", "edge_sparsity"):
        assert key in results
    assert results["madds"] <= results["dense_madds"]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in records] == ["train"] * 3 + ["finetune"]
    for key in ("l1", "edge_sparsity", "val_top1", "val_images"):
        assert key in records[-1]
    assert records[-1]["val_images"] == 500
    assert json.loads((run_dir / "classes.json").read_text()) == list(toy.WNIDS)
    assert (run_dir / "graph_stage1.png").is_file() and (run_dir / "checkpoint_dense.pt").is_file()


def test_graph_json_rebuilds_the_network(learned_run):
    run_dir, _, _ = learned_run
    graph = json.loads((run_dir / "graph.json").read_text())
    for key in ("model", "input_size", "num_classes", "stages", "edges_total", "edges_kept"):
        assert key in graph
    assert graph["edges_kept"] == sum(len(s["kept"]) for s in graph["stages"])
    assert all(len(e) == 3 for s in graph["stages"] for e in s["edges"])
    ckpt = torch.load(run_dir / "checkpoint_last.pt", weights_only=True)
    net = build_from_graph(graph)
    net.load_state_dict(ckpt["model"])


def test_eval_reproduces_the_training_top1(learned_run, toy_root):
    run_dir, metrics, out = learned_run
    argv = ["--config", str(HERE / "configs" / "toy.yaml"), "--toy-root", str(toy_root), "--output-dir", str(out),
            "--checkpoint", str(run_dir / "checkpoint_last.pt"), "--input-size", "32", "--test-resize", "32",
            "--batch-size", "32", "--workers", "0", "--device", "cpu"]
    res = eval_script.main(_args(eval_script.get_args_parser(), argv))
    assert res["top1"] == pytest.approx(metrics["top1"]) and res["val_images"] == 500
    assert res["edges_kept"] == json.loads((run_dir / "results.json").read_text())["edges_kept"]


def _resume_args(toy_root, out):
    return ["--config", str(HERE / "configs" / "toy.yaml"), "--toy-root", str(toy_root), "--output-dir", str(out),
            *TINY, "--batch-size", "20", "--epochs", "2", "--finetune-epochs", "1", "--l1", "0.1",
            "--prune-threshold", "0.3", "--eval-every", "100"]


@pytest.mark.slow
def test_kill_and_resume_across_pruning_equals_uninterrupted(small_root, tmp_path):
    straight, _ = train_script.main(_args(train_script.get_args_parser(), _resume_args(small_root, tmp_path / "a")))
    argv = _resume_args(small_root, tmp_path / "b")
    killed = run_script(HERE / "train.py", *argv, "--die-after-epoch", "1")  # dies before pruning
    assert killed.returncode != 0
    resumed, _ = train_script.main(_args(train_script.get_args_parser(), argv + ["--resume", "auto"]))
    a = torch.load(straight / "checkpoint_last.pt", weights_only=True)["model"]
    b = torch.load(resumed / "checkpoint_last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ra = json.loads((straight / "results.json").read_text())
    rb = json.loads((resumed / "results.json").read_text())
    assert (ra["top1"], ra["edges_kept"]) == (rb["top1"], rb["edges_kept"])
    assert ra["edges_kept"] < ra["edges_total"]  # the resumed run went through a real pruning step


@pytest.mark.slow
def test_two_process_gloo_run(small_root, tmp_path):
    argv = _resume_args(small_root, tmp_path)
    proc = torchrun(HERE / "train.py", *argv, "--epochs", "1", "--finetune-epochs", "1", nproc=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "global batch 20 = 2 process(es) x 10" in proc.stdout + proc.stderr
    run_dir = next((tmp_path / "topo_connectivity" / "toy").glob("*"))
    results = json.loads((run_dir / "results.json").read_text())
    assert results["val_images"] == 100  # each image scored once across the two shards
    single = eval_script.main(_args(eval_script.get_args_parser(), [
        "--config", str(HERE / "configs" / "toy.yaml"), "--toy-root", str(small_root), "--output-dir", str(tmp_path),
        "--checkpoint", str(run_dir / "checkpoint_last.pt"), "--input-size", "32", "--test-resize", "32",
        "--batch-size", "64", "--workers", "0", "--device", "cpu"]))
    assert single["top1"] == pytest.approx(results["top1"])  # sharded evaluation = one-process evaluation


@pytest.mark.slow
def test_detection_on_the_learned_backbone(learned_run, toy_root, tmp_path):
    """Faster R-CNN + FPN on the pruned toy classifier (graph and weights from its checkpoint),
    frozen BN, at 64 px: a short run reaches AP50 >= 10 (an untrained detector scores about 0)."""
    from topo_connectivity import train_det

    run_dir, _, _ = learned_run
    argv = ["--config", str(HERE / "configs" / "toy_det.yaml"), "--toy-root", str(toy_root), "--output-dir",
            str(tmp_path), "--backbone-checkpoint", str(run_dir / "checkpoint_last.pt"), "--freeze-bn",
            "--min-size", "64", "--max-size", "100", "--anchor-sizes", "8", "16", "32", "64", "--epochs", "6",
            "--lr-steps", "5", "--lr", "0.01", "--warmup-iters", "10", "--roi-batch-size", "32", "--device", "cpu"]
    det_dir, stats = train_det.main(_args(train_det.get_args_parser(), argv))
    assert stats["AP50"] >= 10.0, stats
    results = json.loads((det_dir / "results.json").read_text())
    for key in ("AP", "AP50", "AP75", "APs", "APm", "APl", "skipped_images", "dropped_boxes"):
        assert key in results
    assert results["skipped_images"] == 0 and results["dropped_boxes"] == 0 and results["val_images"] == 30
    dets = json.loads((det_dir / "detections_val2017.json").read_text())
    assert dets and set(dets[0]) == {"image_id", "category_id", "bbox", "score"}
    assert {d["category_id"] for d in dets} <= {1, 2, 4}  # COCO's ids, not the contiguous labels
