"""The results as data: paper.json in the shared schema, the README block rendered from the JSON
files, the claim measured by claims.py (its direction asserted where it exceeds the seed spread),
and every config loading and passing the checks."""
from pathlib import Path

import pytest

from eql import train
from shared import config, results

HERE = Path(__file__).resolve().parents[1]
CONFIGS = sorted((HERE / "configs").glob("*.yaml"))


def test_official_rows_rendered_with_unverified_marked():
    paper = results.load_paper(HERE / "results" / "paper.json")
    text = results.render_markdown(paper, {"rows": [], "claims": []})
    assert "| R-50-FPN + EQL (eql.detectron2 README) | 24.0 | 9.4 | 25.2 | 28.4 | 23.6 |" in text
    assert "| EQLv2 (eqlv2 README; an extra, CVPR 2021) | 23.7 | 14.9 | 22.8 | 28.6 |" in text
    assert "R-50-FPN + EQL (paper table) †" in text
    assert all(r.get("source") for t in paper["tables"] for r in t["rows"])


def test_readme_block_agrees_with_the_json():
    results.check_readme(HERE)


def test_claims_recorded_over_three_seeds_and_their_direction():
    rep = results.load_reproduced(HERE / "results" / "reproduced.json")
    claims = {c["id"]: c for c in rep["claims"]}
    assert set(claims) == {"eql_vs_sigmoid_AP", "eql_vs_sigmoid_APr"}
    for c in claims.values():
        assert len(c["seeds"]) == 3 and all(len(v) == 3 for v in c["arms"].values())
        verdict, diff = results.verdict(c["arms"]["EQL"], c["arms"]["sigmoid BCE"])
        assert verdict == c["verdict"] and diff["mean"] == pytest.approx(c["difference"]["mean"])
        if verdict == "holds":       # the difference exceeds the seed spread: EQL ahead on average
            assert sum(c["arms"]["EQL"]) > sum(c["arms"]["sigmoid BCE"])
    rows = {r["method"]: r for r in rep["rows"] if r["table"] == "toy"}
    assert rows["EQL (ours)"]["seeds"] == [0, 1, 2] and rows["EQL (ours)"]["data"] == "toy"
    assert rows["EQL (ours)"]["metrics"]["AP"] > 10 * max(rows["random boxes, 300 per image"]["metrics"]["AP"], 0.1)
    png = HERE / "results" / "per_frequency_ap.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size < 100_000


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_config_loads_and_passes_the_checks(path):
    args = config.parse_args(train.get_args_parser(), ["--config", str(path)])
    train.check_args(args)
    if path.stem.startswith("lvis"):
        assert args.batch_size == 16 and args.lr == 0.02 and args.iters == 90000 and args.lr_steps == [60000, 80000]
        assert args.min_size == [640, 672, 704, 736, 768, 800] and args.detections_per_img == 300
        assert args.score_thresh == 1e-4
        if args.loss == "eql":
            assert args.eql_lambda == (0.00177 if args.dataset == "lvis_v0.5" else 0.0011)


def test_toy_default_without_config_or_data_root():
    args = config.parse_args(train.get_args_parser(), [])
    assert Path(args.config).name == "toy.yaml" and args.compare == ["sigmoid", "eql"]
