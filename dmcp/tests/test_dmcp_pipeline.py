"""End to end on the toy data (written by the real generator, read by the real ImageFolder
loaders): a search lands in its band and exports; train.py retrains the arch and beats chance by
a wide margin; eval.py reproduces it from the validation split alone; no arguments means the toy
config; bad inputs fail early. (Resume and DDP: test_dmcp_distributed.py; the folder reader:
test_dmcp_data.py.)"""
import json
from pathlib import Path

import pytest
import torch

from dmcp import eval as dmcp_eval
from dmcp import prune, train
from shared import config, run

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
                 "--then-retrain", "--retrain-epochs", "1", "--no-export-program", "--ds-samples", "2")
    run_dir, results = prune.main(args)
    return out, run_dir, results, args


def test_toy_search_lands_in_its_band_and_exports(searched):
    out, run_dir, res, args = searched
    target = res["target_madds"]
    assert target == 2.0e6 and 0.95 * target <= res["madds"] <= target
    arch = json.loads((run_dir / "arch.json").read_text())
    assert arch["counted_madds"] == arch["madds"] == res["madds"]
    assert arch["derivation"]["repaired_groups"] >= 0 and arch["method"] == "es"
    assert len(list(run_dir.glob("arch_ds_*.json"))) == 2
    for p in run_dir.glob("arch_ds_*.json"):
        assert 0.95 * target <= json.loads(p.read_text())["madds"] <= target
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1, 2] and [r["train_stage"] for r in records] == [1, 2, 2]
    # the chains themselves moved from 13 % of the full FLOPs (alpha = 0) to around the target
    assert records[0]["expected_madds"] < 0.3 * target
    assert 0.8 * target <= records[-1]["expected_madds"] <= 1.1 * target, records[-1]["expected_madds"]
    pruned = torch.load(run_dir / "pruned.pt", weights_only=True)
    assert pruned["arch"]["madds"] == arch["madds"]
    # --then-retrain trains in the sub-run <config>-retrain; a resumed prune run continues it only
    # when it holds the same architecture
    sub = Path(res["retrain_run_dir"])
    assert sub.parent == out / "dmcp" / "toy-retrain" and (sub / "checkpoint_last.pt").is_file()
    assert prune.retrain_run(args, arch, resumed=True) == (sub, sub / "checkpoint_last.pt")
    other = dict(arch, layers=arch["layers"][:-1])
    fresh, ckpt = prune.retrain_run(args, other, resumed=True)
    assert fresh != sub and fresh.parent == sub.parent and ckpt is None


def test_retraining_beats_chance_and_eval_reproduces_it(searched, toy_root):
    out, run_dir, _, _ = searched
    args = _args(train.get_args_parser(), out, toy_root, "--retrain-epochs", "16", "--arch", str(run_dir / "arch.json"))
    rdir, metrics = train.main(args)
    assert metrics["top1"] >= 40.0, metrics  # chance: 10 %
    res = json.loads((rdir / "results.json").read_text())
    assert res["madds"] == json.loads((run_dir / "arch.json").read_text())["madds"]
    lines = [json.loads(x) for x in (rdir / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 16 and lines[-1]["val_top1"] == pytest.approx(metrics["top1"])
    assert rdir.parent.name == "toy-retrain" and rdir.parent.parent == out / "dmcp"
    # eval.py on a copy of the data that has only the validation split: the training split is
    # neither needed nor scanned; without --checkpoint it finds the newest retraining of the config
    val_only = out / "val_only"
    val_only.mkdir()
    (val_only / "val").symlink_to(toy_root / "val", target_is_directory=True)
    eval_args = _args(dmcp_eval.get_args_parser(), out, toy_root, "--data-root", str(val_only))
    assert run.find_checkpoint(eval_args, "dmcp", name="retrain") == rdir / "checkpoint_last.pt"
    again = dmcp_eval.main(eval_args)
    assert again["top1"] == pytest.approx(metrics["top1"]) and again["images"] == 200
    assert again["amp"] is False and again["skipped_images"] == 0
    # train.py without --arch finds the newest prune run of the config
    assert train.find_arch(_args(train.get_args_parser(), out, toy_root)) == run_dir / "arch.json"


def test_no_arguments_means_the_toy_config():
    for script in (prune, train, dmcp_eval):
        assert config.parse_args(script.get_args_parser(), []).config == str(TOY)
        assert config.parse_args(script.get_args_parser(), ["--data-root", "/x"]).config is None
        hw8 = ROOT / "dmcp" / "configs" / "toy_hw8.yaml"
        assert config.parse_args(script.get_args_parser(), [f"--config={hw8}"]).channel_multiple == 8


def test_evaluation_is_fp32_unless_asked():
    assert config.parse_args(dmcp_eval.get_args_parser(), []).amp is False  # eval.py: --amp to turn it on
    targs = config.parse_args(train.get_args_parser(), [])
    assert targs.amp is True and targs.eval_amp is False  # training autocasts, its evaluation does not
    assert config.parse_args(dmcp_eval.get_args_parser(), ["--amp"]).amp is True


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
