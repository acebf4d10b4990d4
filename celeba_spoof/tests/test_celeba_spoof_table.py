"""The results as data (paper.json and reproduced.json in the shared schema, the README block
rendered from them, the claims over seeds) and report.py's two threshold choices."""
from pathlib import Path

import numpy as np
import pytest

from celeba_spoof import report
from shared import results
from shared.metrics.spoof import spoof_metrics

HERE = Path(__file__).resolve().parents[1]


def test_results_files_and_readme_block_agree():
    paper = results.load_paper(HERE / "results" / "paper.json")
    assert [t["id"] for t in paper["tables"]] == ["intra_test", "toy"]
    released = [r for r in paper["tables"][0]["rows"] if r["verified"]]
    assert [r["TPR@FPR=1%"] for r in released] == [98.87]  # the only number we read ourselves
    reproduced = results.load_reproduced(HERE / "results" / "reproduced.json", {t["id"] for t in paper["tables"]})
    assert {c["id"] for c in reproduced["claims"]} == {"aenet_csg_vs_c_acer", "aenet_csg_vs_c_auc"}
    results.check_readme(HERE)  # fails when the README table and the JSON disagree: python table.py --write-readme


def test_recorded_claims_have_three_seeds_and_consistent_verdicts():
    for claim in results.load_reproduced(HERE / "results" / "reproduced.json")["claims"]:
        assert claim["seeds"] == [0, 1, 2] and all(len(v) == 3 for v in claim["arms"].values())
        verdict, diff = results.verdict(claim["arms"][claim["method"]], claim["arms"][claim["baseline"]],
                                        claim["higher_is_better"])
        assert verdict == claim["verdict"] and diff["mean"] == pytest.approx(claim["difference"]["mean"])
    # measured on the toy (README): both claims hold beyond the seed spread; their direction
    claims = {c["id"]: c for c in results.load_reproduced(HERE / "results" / "reproduced.json")["claims"]}
    acer, auc = claims["aenet_csg_vs_c_acer"], claims["aenet_csg_vs_c_auc"]
    assert acer["verdict"] == auc["verdict"] == "holds"
    assert acer["summary"]["AENet_C,S,G"]["mean"] < acer["summary"]["baseline (C)"]["mean"]  # lower ACER
    assert auc["summary"]["AENet_C,S,G"]["mean"] > auc["summary"]["baseline (C)"]["mean"]  # higher AUC
    for plot in ("roc_CSG", "roc_C", "scores_CSG", "scores_C"):
        assert (HERE / "results" / f"{plot}.png").stat().st_size > 1000


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
