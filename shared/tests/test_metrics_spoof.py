"""shared.metrics.spoof: CelebA-Spoof client.py / CDCN utils.py vectors, hand-worked and edge
cases."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from shared.metrics.spoof import auc, roc_curve, spoof_metrics, tpr_at_fpr

FIX = Path(__file__).parent / "fixtures" / "spoof"
CASES = ["case_handmade_10live_10spoof", "case_main_2000live_6000spoof"]
TOL = 1e-12


def _load(case):
    d = np.load(FIX / case / "inputs.npz")
    return d["p_spoof"], d["label43"], json.loads((FIX / case / "expected.json").read_text())


@pytest.mark.parametrize("case", CASES)
def test_vectors_eer_point(case):
    p, y, e = _load(case)
    r = spoof_metrics(p, y)
    off = e["official_TPR_at_FPR"]
    for fpr, tpr, thr in zip(off["fpr_list"], off["tpr"], off["thresholds_on_p_spoof"]):
        assert abs(r["tpr_at_fpr"][fpr] - tpr) <= TOL
        assert abs(r["tpr_at_fpr_threshold"][fpr] - thr) <= TOL
    c = e["cdcn_utils"]
    pairs = {
        "threshold_liveness": "threshold_on_liveness", "threshold": "threshold_on_p_spoof_equiv",
        "ACC": "ACC", "APCER": "APCER", "BPCER": "BPCER", "ACER": "ACER",
        "EER": "EER_performances_SiWM_EER", "HTER": "HTER_performances_CASIA_Replay",
        "FAR": "FAR_at_that_point", "FRR": "FRR_at_that_point", "AUC": "AUC_performances_ZeroShot",
    }
    for ours, theirs in pairs.items():
        assert abs(r[ours] - c[theirs]) <= TOL, ours
    assert abs(r["HTER"] - c["HTER_performances_ZeroShot"]) <= TOL
    assert abs(r["AUC"] - e["sklearn_roc_auc_score(labels43, p_spoof)"]) <= TOL
    assert (r["n_live"], r["n_spoof"]) == (e["n_live"], e["n_spoof"])
    assert r["threshold_source"] == "eer"


@pytest.mark.parametrize("case", CASES)
def test_vectors_fixed_threshold(case):
    p, y, e = _load(case)
    r = spoof_metrics(p, y, threshold=0.5)
    for k in ("APCER", "BPCER", "ACER"):
        assert abs(r[k] - e["fixed_threshold_0.5_on_p_spoof"][k]) <= TOL
    assert r["threshold_source"] == "given" and r["HTER"] == r["ACER"]
    # threshold-independent numbers are unchanged
    ref = spoof_metrics(p, y)
    assert r["AUC"] == ref["AUC"] and r["EER"] == ref["EER"] and r["tpr_at_fpr"] == ref["tpr_at_fpr"]


@pytest.mark.parametrize("case", CASES)
def test_liveness_threshold_reproduces_cdcn_rule(case):
    # CDCN "test based on val_threshold": applying the EER run's liveness threshold again gives
    # the same APCER / BPCER as the EER run itself.
    p, y, _ = _load(case)
    ref = spoof_metrics(p, y)
    r = spoof_metrics(p, y, threshold=ref["threshold_liveness"], threshold_scale="liveness")
    for k in ("APCER", "BPCER", "ACER", "ACC"):
        assert r[k] == ref[k]


def test_torch_input_equals_numpy():
    p, y, _ = _load(CASES[1])
    a = spoof_metrics(p, y)
    b = spoof_metrics(torch.from_numpy(p), torch.from_numpy(y))
    c = spoof_metrics(list(p), list(y.astype(bool)))
    for k, v in a.items():
        assert b[k] == v and c[k] == v, k


def test_hand_worked_tpr_at_fpr_is_strict_on_ties():
    # live p_spoof sorted desc: [0.9, 0.2, 0.1]; int(0.01 * 3) = 0 -> max(1, 0) = 1 -> thr 0.9.
    # spoof scores strictly above 0.9: only 0.95 (the tied 0.9 does not count) -> 1/3.
    p = [0.1, 0.2, 0.9, 0.9, 0.95, 0.5]
    y = [0, 0, 0, 1, 1, 1]
    tprs, thrs = tpr_at_fpr(p, y, fprs=(0.01, 0.5))
    assert thrs[0.01] == 0.9 and tprs[0.01] == 1 / 3
    # int(0.5 * 3) = 1 -> still the top live score
    assert thrs[0.5] == 0.9


def test_hand_worked_eer_point():
    # liveness = 1 - p: live [0.9, 0.6, 0.3], spoof [0.7, 0.2, 0.1]. Descending:
    # 0.9L 0.7S 0.6L 0.3L 0.2S 0.1S -> (fps, tps) = (0,1) (1,1) (1,2) (1,3) (2,3) (3,3);
    # drop_intermediate removes (1,2) and (2,3); with (0,0) first:
    # fpr = [0, 0, 1/3, 1/3, 1], tpr = [0, 1/3, 1/3, 1, 1], thr = [inf, .9, .7, .3, .1].
    # |tpr + fpr - 1| = [1, 2/3, 1/3, 1/3, 1]: indices 2 and 3 tie mathematically, but in float64
    # they are 0.33333333333333337 and 0.33333333333333326, so argmin (CDCN's, on the same
    # arithmetic) picks index 3: liveness threshold 1 - 0.7 = 0.30000000000000004.
    p = np.array([0.1, 0.4, 0.7, 0.3, 0.8, 0.9])
    y = np.array([0, 0, 0, 1, 1, 1])
    fpr, tpr, thr = roc_curve(1 - y, 1 - p)
    np.testing.assert_allclose(fpr, [0, 0, 1 / 3, 1 / 3, 1], rtol=0, atol=1e-15)
    np.testing.assert_allclose(tpr, [0, 1 / 3, 1 / 3, 1, 1], rtol=0, atol=1e-15)
    np.testing.assert_allclose(thr, [np.inf, 0.9, 0.7, 0.3, 0.1], rtol=0, atol=1e-15)
    r = spoof_metrics(p, y)
    assert r["threshold_liveness"] == 1 - 0.7 and r["threshold"] == pytest.approx(0.7, abs=1e-15)
    assert r["EER"] == pytest.approx(1 / 3, abs=1e-15)  # fpr[3]
    assert r["FRR"] == 0.0 and r["HTER"] == pytest.approx(1 / 6, abs=1e-15)  # (1/3 + 0) / 2
    assert r["APCER"] == pytest.approx(1 / 3, abs=1e-15)  # spoof liveness 0.7 > thr
    assert r["BPCER"] == pytest.approx(1 / 3, abs=1e-15)  # live liveness == thr is rejected
    assert r["ACER"] == pytest.approx(1 / 3, abs=1e-15)
    # TPR@FPR: top live p_spoof 0.7; spoof strictly above: 0.8, 0.9
    assert r["tpr_at_fpr"][0.01] == 2 / 3 and r["tpr_at_fpr_threshold"][0.01] == 0.7
    assert r["AUC"] == pytest.approx(7 / 9, abs=1e-15)  # 7 of the 9 live/spoof pairs ordered


def test_roc_curve_matches_sklearn_doc_example():
    # sklearn.metrics.roc_curve docstring: y = [1, 1, 2, 2], scores = [.1, .4, .35, .8]
    fpr, tpr, thr = roc_curve(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    np.testing.assert_array_equal(fpr, [0.0, 0.0, 0.5, 0.5, 1.0])
    np.testing.assert_array_equal(tpr, [0.0, 0.5, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(thr, [np.inf, 0.8, 0.4, 0.35, 0.1])


def test_roc_curve_drops_intermediate_points():
    y, s = np.array([1, 1, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])
    fpr, tpr, thr = roc_curve(y, s)
    np.testing.assert_array_equal(fpr, [0, 0, 0, 1])
    np.testing.assert_array_equal(tpr, [0, 1 / 3, 1, 1])
    np.testing.assert_array_equal(thr, [np.inf, 0.9, 0.7, 0.1])
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    assert len(thr) == 5


def test_ties_in_scores():
    # all scores tied: one ROC point besides (0, 0) -> chance-level AUC
    r = spoof_metrics(np.full(6, 0.5), np.array([0, 1, 0, 1, 0, 1]))
    assert r["AUC"] == 0.5
    assert r["tpr_at_fpr"][0.01] == 0.0  # nothing strictly above the tied threshold
    fpr, tpr, thr = roc_curve(np.array([1, 0, 1, 0]), np.array([0.5, 0.5, 0.5, 0.5]))
    np.testing.assert_array_equal(fpr, [0, 1])
    np.testing.assert_array_equal(tpr, [0, 1])
    assert auc(fpr, tpr) == 0.5


def test_perfect_separation():
    r = spoof_metrics(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1]))
    assert r["AUC"] == 1.0 and r["EER"] == 0.0 and r["HTER"] == 0.0 and r["APCER"] == 0.0
    # CDCN quirk kept on purpose: the EER threshold is the lowest live liveness (0.8) and
    # "live rejected iff liveness <= thr" rejects that very sample.
    assert r["threshold_liveness"] == 1 - 0.2 and r["BPCER"] == 0.5
    # a threshold chosen between the classes gives the clean answer
    r = spoof_metrics(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1]), threshold=0.5)
    assert r["APCER"] == 0.0 and r["BPCER"] == 0.0
    assert all(v == 1.0 for v in r["tpr_at_fpr"].values())


@pytest.mark.parametrize("y", [[0, 0, 0], [1, 1, 1]])
def test_single_class_raises(y):
    with pytest.raises(ValueError, match="both live and spoof"):
        spoof_metrics([0.1, 0.5, 0.9], y)


def test_input_errors():
    with pytest.raises(ValueError, match="lengths differ"):
        spoof_metrics([0.1, 0.5, 0.9], [0, 1])
    with pytest.raises(ValueError, match="1-D"):
        spoof_metrics(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="0 \\(live\\) / 1"):
        spoof_metrics([0.1, 0.5], [0, 2])
    with pytest.raises(ValueError, match="NaN"):
        spoof_metrics([0.1, np.nan], [0, 1])
    with pytest.raises(ValueError, match="threshold_scale"):
        spoof_metrics([0.1, 0.5], [0, 1], threshold=0.5, threshold_scale="logit")
