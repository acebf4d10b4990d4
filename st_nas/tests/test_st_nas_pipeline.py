"""End to end on the toy data (written by the real generator, read by the real loaders): a search
with retraining finds an architecture whose proxy beats most random ones, retrains it well above
chance, writes the documented files; eval.py reproduces it; train.py finds the search by itself;
bad inputs fail before any work."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from shared import config
from st_nas import eval as st_eval
from st_nas import search, train
from st_nas.model import Supernet
from st_nas.phases import SearchData
from st_nas.proxy import ProxyEvaluator
from st_nas.space import Skeleton, arch_from_json, arch_madds, count_space, is_valid_block, sample_within

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "st_nas" / "configs" / "toy.yaml"
# a smaller and faster version of the toy run (24 px, fewer images, epochs and candidates)
FAST = ["--toy-train-per-class", "100", "--toy-val-per-class", "20", "--search-val-per-class", "10",
        "--calib-images", "64", "--input-size", "24", "--madds-limit", "3.5", "--supernet-epochs", "3",
        "--sgld-epochs", "1", "--snapshots", "2", "--population", "6", "--topk", "3", "--generations", "2",
        "--mutations", "3", "--crossovers", "3", "--retrain-epochs", "10", "--val-every", "0"]


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    from st_nas.toy import make_toy_dataset
    return make_toy_dataset(tmp_path_factory.mktemp("toy") / "st_nas", train_per_class=100, val_per_class=20)


def _args(parser, out, root, *extra):
    return config.parse_args(parser, ["--config", str(TOY), "--device", "cpu", "--output-dir", str(out),
                                      "--toy-root", str(root), *FAST, *extra])


@pytest.fixture(scope="module")
def searched(tmp_path_factory, toy_root):
    out = tmp_path_factory.mktemp("runs")
    args = _args(search.get_args_parser(), out, toy_root, "--then-retrain")
    run_dir, results = search.main(args)
    return out, run_dir, results, args


@pytest.mark.slow
def test_search_writes_a_valid_architecture_and_retrains_it(searched):
    _, run_dir, res, args = searched
    arch = json.loads((run_dir / "arch.json").read_text())
    sk = Skeleton.from_dict(arch["skeleton"])
    assert arch["madds"] == arch_madds(sk, arch_from_json(arch["stages"], sk)) <= arch["madds_limit"] == 3_500_000
    assert arch["space_size"] == count_space(sk) and arch["input_size"] == 24 and arch["num_classes"] == 10
    assert arch["proxy"] == res["proxy"] and res["search_val_images"] == 100
    assert res["top1"] >= 40.0, res  # chance: 10 %
    assert res["val_images"] == 200 and res["madds"] == arch["madds"]
    rows = [json.loads(x) for x in (run_dir / "population.jsonl").read_text().splitlines()]
    assert {r["generation"] for r in rows} == {0, 1, 2} and len(rows) == len({json.dumps(r["arch"]) for r in rows})
    for r in rows:  # every evaluated architecture is a valid DAG within the limit
        a = arch_from_json(r["arch"], sk)
        assert all(is_valid_block(n, b) for n, b in zip(sk.nodes, a)) and r["madds"] == arch_madds(sk, a) <= 3_500_000
    assert max(r["proxy"] for r in rows) == arch["proxy"]
    assert json.loads((run_dir / "classes.json").read_text()) == sorted(json.loads((run_dir / "classes.json").read_text()))
    phases = [json.loads(x).get("phase") for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert phases.count(1) == args.supernet_epochs and phases.count(2) == args.sgld_epochs and phases.count(3) == 3


@pytest.mark.slow
def test_best_proxy_beats_random_architectures(searched, toy_root):
    """The searched architecture's proxy is at least the 90th percentile of 20 random ones
    (within the same limit, same samples, same held-out images)."""
    _, run_dir, res, args = searched
    from st_nas.data import load_splits
    splits = load_splits(args, train=True, val=False)
    sk = Skeleton.from_args(args, 10)
    data = SearchData.build(args, splits, "cpu")
    ev = ProxyEvaluator(Supernet(sk), sorted((run_dir / "snapshots").glob("theta_*.pt")), data.calib, data.search_val,
                        "cpu")
    g = torch.Generator().manual_seed(123)
    rand = ev([sample_within(sk, g, 0, 3.5e6) for _ in range(20)])
    assert res["proxy"] >= np.percentile(rand, 90), (res["proxy"], sorted(rand))


@pytest.mark.slow
def test_eval_reproduces_and_train_finds_the_search(searched, toy_root):
    out, run_dir, res, _ = searched
    again = st_eval.main(_args(st_eval.get_args_parser(), out, toy_root))  # newest retraining of the config
    assert again["top1"] == pytest.approx(res["top1"]) and again["images"] == 200
    assert train.find_arch(_args(train.get_args_parser(), out, toy_root)) == run_dir / "arch.json"


def test_no_search_yet_names_the_make_target(tmp_path, toy_root):
    with pytest.raises(FileNotFoundError, match="make st_nas-search"):
        train.find_arch(_args(train.get_args_parser(), tmp_path, toy_root))
    with pytest.raises(FileNotFoundError, match="make st_nas-train"):
        st_eval.find_checkpoint(_args(st_eval.get_args_parser(), tmp_path, toy_root))


def test_no_arguments_means_the_toy_config():
    args = config.parse_args(search.get_args_parser(), [])
    assert args.config == str(TOY) and args.then_retrain and args.madds_limit == 6.0


def test_bad_inputs_fail_before_any_work(tmp_path, toy_root):
    from st_nas.data import DataError
    with pytest.raises(ValueError, match="below the cheapest architecture"):
        search.main(_args(search.get_args_parser(), tmp_path, toy_root, "--madds-limit", "1"))
    with pytest.raises(ValueError, match="--topk"):
        search.main(_args(search.get_args_parser(), tmp_path, toy_root, "--topk", "60"))
    (tmp_path / "bad" / "train" / "n01").mkdir(parents=True)
    with pytest.raises(DataError, match="n01: class folder without images"):
        search.main(_args(search.get_args_parser(), tmp_path, toy_root, "--data-root", str(tmp_path / "bad")))
    bad = tmp_path / "arch.json"
    bad.write_text(json.dumps({"stages": [{"nodes": 3, "edges": [[0, 2, "k3e3"]]}], "skeleton": {}}))
    with pytest.raises(ValueError, match=str(bad)):
        train.main(_args(train.get_args_parser(), tmp_path, toy_root, "--arch", str(bad)))


@pytest.mark.slow
def test_train_and_eval_scripts_on_the_searched_architecture(searched, toy_root, tmp_path):
    """train.py retrains the search's arch.json (one epoch here) into its own run folder, and
    eval.py --checkpoint evaluates that checkpoint to the same figures."""
    out, run_dir, _, _ = searched
    tr_dir, res = train.main(_args(train.get_args_parser(), tmp_path, toy_root, "--arch", str(run_dir / "arch.json"),
                                   "--retrain-epochs", "1"))
    assert tr_dir.parent == tmp_path / "st_nas" / "toy-retrain" and res["val_images"] == 200
    assert json.loads((tr_dir / "results.json").read_text())["top1"] == res["top1"]
    again = st_eval.main(_args(st_eval.get_args_parser(), tmp_path, toy_root, "--checkpoint",
                               str(tr_dir / "checkpoint_last.pt")))
    assert again["top1"] == pytest.approx(res["top1"]) and again["images"] == 200
