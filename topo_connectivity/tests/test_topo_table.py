"""Configs parse, results files are valid, the README table is the JSON's, claims that hold keep
their direction."""
import json
from pathlib import Path

import pytest

from shared import config, results
from topo_connectivity import train, train_det

HERE = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((HERE / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_config_parses(path):
    parser = train_det.get_args_parser() if path.stem.startswith(("coco", "toy_det")) else train.get_args_parser()
    args = config.parse_args(parser, ["--config", str(path)])
    assert args.batch_size > 0 and args.epochs > 0
    if not path.stem.startswith(("coco", "toy")):
        assert args.wiring == path.stem.rsplit("_", 1)[1]


def test_results_files_and_readme_agree():
    paper = results.load_paper(HERE / "results" / "paper.json")
    ids = {t["id"] for t in paper["tables"]}
    assert {"imagenet", "coco", "toy", "toy_det"} <= ids
    assert all(not r["verified"] and r["source"] for t in paper["tables"] for r in t["rows"])
    results.load_reproduced(HERE / "results" / "reproduced.json", ids)
    results.check_readme(HERE)


def test_recorded_claims_keep_their_direction():
    data = json.loads((HERE / "results" / "reproduced.json").read_text())
    assert {c["id"] for c in data["claims"]} >= {"learned_vs_residual", "learned_vs_random"}
    for c in data["claims"]:
        assert len(c["seeds"]) == 3 and all(len(v) == 3 for v in c["arms"].values())
        v, d = results.verdict(c["arms"][c["method"]], c["arms"][c["baseline"]], c["higher_is_better"])
        assert v == c["verdict"]
        if v == "holds":
            assert d["mean"] > 0
        elif v == "reversed":
            assert d["mean"] < 0
