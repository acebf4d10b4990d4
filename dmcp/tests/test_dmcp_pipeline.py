"""End to end on the toy data (written by the real generator, read by the real ImageFolder
loaders): a search lands in its band and exports; train.py retrains the arch and beats chance by
a wide margin; eval.py reproduces it; bad inputs fail early. (Resume and DDP:
test_dmcp_distributed.py.)"""
import json
from pathlib import Path

import pytest
import torch

from dmcp import prune, train
from dmcp import eval as dmcp_eval
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


@pytest.fixture(scope="module")
def searched(tmp_path_factory, toy_root):
    out = tmp_path_factory.mktemp("runs")
    args = _args(prune.get_args_parser(), out, toy_root, "--epochs", "3", "--arch-lr", "40",
                 "--no-then-retrain", "--no-export-program", "--ds-samples", "2")
    run_dir, results = prune.main(args)
    return out, run_dir, results


def test_toy_search_lands_in_its_band_and_exports(searched):
    _, run_dir, res = searched
    target = res["target_mflops"]
    assert 0.95 * target <= res["mflops"] <= target
    arch = json.loads((run_dir / "arch.json").read_text())
    assert arch["counted_madds"] == arch["madds"] == res["madds"]
    assert arch["derivation"]["derive_ms"] < 1000
    assert len(list(run_dir.glob("arch_ds_*.json"))) == 2
    for p in run_dir.glob("arch_ds_*.json"):
        assert 0.95 * target * 1e6 <= json.loads(p.read_text())["madds"] <= target * 1e6
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1, 2] and [r["train_stage"] for r in records] == [1, 2, 2]
    # the chains themselves moved from 13 % of the full FLOPs (alpha = 0) to around the target
    assert records[0]["expected_mflops"] < 0.3 * target
    assert 0.8 * target <= records[-1]["expected_mflops"] <= 1.1 * target, records[-1]["expected_mflops"]
    pruned = torch.load(run_dir / "pruned.pt", weights_only=True)
    assert pruned["arch"]["madds"] == arch["madds"]


def test_retraining_beats_chance_and_eval_reproduces_it(searched, toy_root):
    out, run_dir, _ = searched
    args = _args(train.get_args_parser(), out, toy_root, "--retrain-epochs", "16", "--arch", str(run_dir / "arch.json"))
    rdir, metrics = train.main(args)
    assert metrics["top1"] >= 40.0, metrics  # chance: 10 %
    res = json.loads((rdir / "results.json").read_text())
    assert res["madds"] == json.loads((run_dir / "arch.json").read_text())["madds"]
    lines = [json.loads(x) for x in (rdir / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 16 and lines[-1]["val_top1"] == pytest.approx(metrics["top1"])
    again = dmcp_eval.main(_args(dmcp_eval.get_args_parser(), out, toy_root,
                                 "--checkpoint", str(rdir / "checkpoint_last.pt")))
    assert again["top1"] == pytest.approx(metrics["top1"]) and again["images"] == 200
    # train.py without --arch finds the newest prune run of the config
    assert train.find_arch(_args(train.get_args_parser(), out, toy_root)) == run_dir / "arch.json"


def test_no_arguments_means_the_toy_config():
    assert prune.cli_argv([]) == ["--config", str(ROOT / "dmcp" / "configs" / "toy.yaml")]
    assert prune.cli_argv(["--data-root", "/x"]) == ["--data-root", "/x"]
    assert prune.cli_argv(["--config=c.yaml"]) == ["--config=c.yaml"]


def test_bad_inputs_fail_early(tmp_path, toy_root):
    with pytest.raises(ValueError, match="--flops"):
        prune.main(_args(prune.get_args_parser(), tmp_path, toy_root, "--flops", "-1"))
    with pytest.raises(ValueError, match="outside what this supernet can reach"):
        prune.main(_args(prune.get_args_parser(), tmp_path, toy_root, "--flops", "100"))
    from dmcp.data import DataError
    (tmp_path / "bad" / "train" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="without images"):
        prune.main(_args(prune.get_args_parser(), tmp_path, toy_root, "--data-root", str(tmp_path / "bad")))
    bad = tmp_path / "arch.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        train.main(_args(train.get_args_parser(), tmp_path, toy_root, "--arch", str(bad)))
