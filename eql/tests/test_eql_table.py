"""table.py renders the official rows (unverified ones marked) beside our runs; every config loads."""
import json
from pathlib import Path

import pytest

from eql import table, train
from shared import config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_table_has_official_rows_marks_unverified_and_adds_runs(tmp_path):
    run = tmp_path / "toy-eql" / "20260101-000000"
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({
        "dataset": "toy", "run_name": "toy-eql", "loss": "eql", "iters": 400,
        "metrics": {"bbox": {"AP": 25.531, "AP50": 50.3, "APr": 13.2, "APc": 31.6, "APf": 45.8}}}))
    (run / "eval_checkpoint_last").mkdir()
    (run / "eval_checkpoint_last" / "results.json").write_text(json.dumps({"dataset": "toy", "metrics": {}}))
    text = table.render("lvis_v0.5", tmp_path)
    assert "| R-50-FPN + EQL (eql.detectron2 README) | 24.00 | 9.40 | 25.20 | 28.40 | 23.60 |" in text
    assert "R-50-FPN + EQL (paper table) †" in text and "ours" not in text
    assert "| EQLv2 (eqlv2 README; an extra, CVPR 2021) | 23.70 | 14.90 | 22.80 | 28.60 | — |" in table.render(
        "lvis_v1", tmp_path)
    toy = table.render("toy", tmp_path)
    assert "| ours: toy-eql (eql, 400 it, 20260101-000000) | 25.53 | 50.30 | 13.20 | 31.60 | 45.80 |" in toy
    assert toy.count("ours:") == 1  # re-evaluations are not separate rows


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
