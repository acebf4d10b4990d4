"""table.py (paper rows, our runs, one row per threshold choice) and report.py's two threshold
choices."""
import json

import numpy as np
import pytest

from celeba_spoof import report, table
from shared.metrics.spoof import spoof_metrics


def test_table_has_paper_rows_marks_unverified_and_adds_runs(tmp_path):
    m = {c: 10.0 for c in table.COLUMNS}
    m["AUC"] = 0.987654
    run = tmp_path / "toy-CSG" / "20260101-000000"
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({"variant_name": "AENet_C,S,G", "protocol": "intra_test", "toy": True,
                                                  "metrics": {"test@val": m, "test@test": {**m, "ACER": 5.0}}}))
    (run / "eval_checkpoint_last_intra_test").mkdir()
    (run / "eval_checkpoint_last_intra_test" / "results.json").write_text(json.dumps({"metrics": {}}))
    other = tmp_path / "p1-C" / "20260101-000000"
    other.mkdir(parents=True)
    (other / "results.json").write_text(json.dumps({"variant_name": "baseline (C)", "protocol": "protocol1",
                                                    "metrics": {"test@test": m}}))
    text = table.render(tmp_path)
    assert "| AENet_C,S,G (paper) † | — | 98.90 | 97.30 | 87.30 | 0.9989 | 0.90 | 2.29 | 0.96 | 1.63 |" in text
    assert "| AENet_C,S,G (released checkpoint, official client.py) | — | 98.87 | 97.29 | 86.42 |" in text
    assert "| ours: AENet_C,S,G, toy-CSG (20260101-000000) [toy data] | val | 10.00 | 10.00 | 10.00 | 0.9877 |" in text
    assert "| test | 10.00" in text and text.count("ours:") == 2 and "baseline" not in text
    p1 = table.render(tmp_path, "protocol1")
    assert "(paper)" not in p1 and p1.count("ours: baseline (C)") == 1


def test_report_thresholds_from_val_and_from_test():
    rng = np.random.default_rng(0)
    y_val, y_test = rng.integers(0, 2, 200), rng.integers(0, 2, 300)
    p_val = np.clip(0.3 * y_val + rng.normal(0.35, 0.2, 200), 0, 1)
    p_test = np.clip(0.3 * y_test + rng.normal(0.35, 0.2, 300), 0, 1)
    res = report.evaluate_scores(p_test, y_test, p_val, y_val)
    val = spoof_metrics(p_val, y_val)
    at_val = spoof_metrics(p_test, y_test, threshold=val["threshold_liveness"], threshold_scale="liveness")
    assert res["val"]["ACER"] == pytest.approx(100 * val["ACER"])
    assert res["test@val"]["ACER"] == pytest.approx(100 * at_val["ACER"])
    assert res["test@val"]["threshold"] == pytest.approx(val["threshold"])
    assert res["test@test"]["ACER"] == pytest.approx(100 * spoof_metrics(p_test, y_test)["ACER"])
    assert res["test@val"]["AUC"] == res["test@test"]["AUC"]
    assert report.headline(res)["threshold_from"] == "val"
    only_test = report.evaluate_scores(p_test, y_test)
    assert set(only_test) == {"test@test"} and report.headline(only_test)["threshold_from"] == "test"
    assert "| chance |" in report.format_table([("x", res)])
