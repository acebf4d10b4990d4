"""Tests of shared.metrics.activitynet against the official ActivityNet evaluators.

The `small` and `medium` fixtures are inputs and outputs of activitynet/ActivityNet
`Evaluation/eval_proposal.py` / `eval_detection.py` (commit 82304fa9); the large medium inputs
are gzipped. Hand-worked cases pin down the quirks; random tie-heavy cases are cross-checked
against the plain per-prediction loop of `shared/bench/bench_activitynet.py`.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from shared.bench.bench_activitynet import reference_detection, reference_proposals
from shared.metrics.activitynet import evaluate_proposals, parse_tiou_thresholds, segment_tiou
from shared.metrics.activitynet_detection import evaluate_detections
from shared.metrics.plots import plot_ar_an, plot_ar_an_compare

FIX = Path(__file__).parent / "fixtures" / "activitynet"
TOL = 1e-9


def _inputs(case):
    d = FIX / case
    if case == "small":
        return d / "ground_truth.json", d / "proposals.json", d / "detections.json"
    # read the gzipped medium inputs into dicts (the path form is tested elsewhere)
    def load(name):
        with gzip.open(d / f"{name}.json.gz", "rt") as f:
            return json.load(f)
    return load("ground_truth"), load("proposals"), load("detections")


def _expected(case, what):
    with open(FIX / case / f"expected_{what}.json") as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------
# Official vectors
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["small", "medium"])
def test_proposals_match_official(case):
    gt, props, _ = _inputs(case)
    exp = _expected(case, "proposal")
    thr = np.asarray(exp["params"]["tiou_thresholds"])
    res = evaluate_proposals(gt, props, subset=exp["params"]["subset"],
                             max_avg_nr_proposals=exp["params"]["max_avg_nr_proposals"],
                             tiou_thresholds=thr)
    for k in ("AR@1", "AR@5", "AR@10", "AR@100", "AUC"):
        assert abs(res[k] - exp[k]) <= TOL, k
    np.testing.assert_allclose(res["avg_recall"], exp["avg_recall"], rtol=0, atol=TOL)
    np.testing.assert_allclose(res["recall"], exp["recall_per_tiou"], rtol=0, atol=TOL)
    np.testing.assert_allclose(res["proposals_per_video"], exp["proposals_per_video"],
                               rtol=0, atol=TOL)
    assert res["n_gt"] == exp["n_gt_instances"]
    assert res["n_proposals"] == exp["n_proposals_loaded"]
    # AR@k is the average-recall curve at index k - 1 for the budget of 100
    for k in (1, 5, 10, 50, 100):
        assert res[f"AR@{k}"] == res["avg_recall"][k - 1]
    assert "AR@200" not in res


@pytest.mark.parametrize("case", ["small", "medium"])
def test_detections_match_official(case):
    gt, _, dets = _inputs(case)
    exp = _expected(case, "detection")
    thr = np.asarray(exp["params"]["tiou_thresholds"])
    res = evaluate_detections(gt, dets, subset=exp["params"]["subset"], tiou_thresholds=thr)
    assert res["classes"] == list(exp["AP_per_class"])     # official activity_index order
    ap = np.array([exp["AP_per_class"][c] for c in res["classes"]]).T
    np.testing.assert_allclose(res["ap"], ap, rtol=0, atol=TOL)
    np.testing.assert_allclose(res["mAP_per_tiou"], exp["mAP"], rtol=0, atol=TOL)
    np.testing.assert_allclose(res["mAP_per_tiou"], list(exp["mAP_per_tiou"].values()),
                               rtol=0, atol=TOL)
    assert abs(res["mAP"] - exp["average_mAP"]) <= TOL
    assert res["n_gt"] == exp["n_gt_instances"]
    assert res["n_predictions"] == exp["n_predictions_loaded"]


def test_medium_quirks_and_gz_paths():
    info = json.loads((FIX / "medium" / "case_info.json").read_text())
    res = evaluate_detections(FIX / "medium" / "ground_truth.json.gz",
                              str(FIX / "medium" / "detections.json.gz"))
    # the class without detections gets AP 0, and is reported
    c = res["classes"].index(info["class_without_detections"])
    assert np.all(res["ap"][:, c] == 0)
    assert res["classes_without_predictions"] == [info["class_without_detections"]]
    exp = _expected("medium", "detection")
    assert abs(res["mAP"] - exp["average_mAP"]) <= TOL


# ---------------------------------------------------------------------------------------------
# Hand-worked cases
# ---------------------------------------------------------------------------------------------
def _gt(videos, subset="validation"):
    """videos: {vid: [(s, e, label), ...]} -> ActivityNet ground truth."""
    return {"version": "1.3", "taxonomy": [], "database": {
        v: {"subset": subset, "duration": 100.0,
            "annotations": [{"segment": [s, e], "label": lab} for s, e, lab in anns]}
        for v, anns in videos.items()}}


def _sub(videos, with_label=False):
    """videos: {vid: [(s, e, score[, label]), ...]} -> submission."""
    res = {}
    for v, preds in videos.items():
        res[v] = []
        for p in preds:
            d = {"segment": [p[0], p[1]], "score": p[2]}
            if with_label:
                d["label"] = p[3]
            res[v].append(d)
    return {"version": "1.3", "external_data": {}, "results": res}


GT2 = _gt({"v1": [(0, 10, "a")], "v2": [(0, 10, "a"), (20, 30, "a")]})
PROPS2 = _sub({"v1": [(0, 10, 0.9), (50, 60, 0.1)], "v2": [(20, 30, 0.8), (0, 5, 0.7)]})


def test_proposals_two_videos_by_hand_budget_1():
    # ratio = 1 * 2 videos / 4 proposals = 0.5 -> each video keeps its best proposal
    # (v1: [0,10], v2: [20,30]); pcn_j = j/100 -> a video uses int(1 * j/100) proposals,
    # i.e. none before the last point, where 2 of the 3 segments are found (tIoU 1).
    res = evaluate_proposals(GT2, PROPS2, max_avg_nr_proposals=1)
    assert res["n_proposals_kept"] == 2
    np.testing.assert_array_equal(res["avg_recall"][:99], 0.0)
    assert res["avg_recall"][99] == pytest.approx(2 / 3, abs=1e-15)
    np.testing.assert_allclose(res["proposals_per_video"], np.arange(1, 101) / 100)
    assert set(k for k in res if k.startswith("AR@")) == {"AR@1"}
    assert res["AR@1"] == pytest.approx(2 / 3, abs=1e-15)
    # trapezoid: 0.01 * (0 + 2/3) / 2 over an x-range of 1
    assert res["AUC"] == pytest.approx(100 * 0.01 * (2 / 3) / 2, abs=1e-12)


def test_proposals_two_videos_by_hand_budget_2():
    # all 4 proposals kept; up to j=49 no proposal, from 50 the best one (2/3 recalled),
    # at j=100 also v2's [0,5], tIoU 0.5 with [0,10]: recalled at threshold 0.5 only.
    res = evaluate_proposals(GT2, PROPS2, max_avg_nr_proposals=2)
    np.testing.assert_array_equal(res["avg_recall"][:49], 0.0)
    np.testing.assert_allclose(res["avg_recall"][49:99], 2 / 3, atol=1e-15)
    assert res["recall"][0, 99] == 1.0
    np.testing.assert_allclose(res["recall"][1:, 99], 2 / 3, atol=1e-15)
    assert res["avg_recall"][99] == pytest.approx((1 + 9 * 2 / 3) / 10, abs=1e-15)
    assert res["AR@1"] == res["avg_recall"][49]
    x = np.arange(1, 101) / 50
    area = np.sum((res["avg_recall"][1:] + res["avg_recall"][:-1]) / 2 * np.diff(x))
    assert res["AUC"] == pytest.approx(100 * area / 2, abs=1e-12)


def test_proposals_video_without_gt_counts_in_budget_and_missing_video_is_a_miss():
    # v3 is a validation video without annotations: its proposals are not evaluated but
    # count in the budget ratio: 2 * 2 / 8 = 0.5 -> each evaluated video keeps 1 proposal.
    gt = _gt({"v1": [(0, 10, "a")], "v2": [(0, 10, "a"), (20, 30, "a")], "v3": []})
    props = dict(PROPS2, results=dict(PROPS2["results"], v3=[
        {"segment": [0, 10], "score": 0.5}] * 4))
    res = evaluate_proposals(gt, props, max_avg_nr_proposals=2)
    assert res["n_videos"] == 2 and res["n_proposals"] == 8 and res["n_proposals_kept"] == 2
    np.testing.assert_array_equal(res["avg_recall"][:49], 0.0)
    np.testing.assert_allclose(res["avg_recall"][49:], 2 / 3, atol=1e-15)
    np.testing.assert_allclose(res["proposals_per_video"], np.arange(1, 101) / 50)
    # a video without proposals (v2 here) counts its 2 segments as misses
    only_v1 = _sub({"v1": [(0, 10, 0.9), (50, 60, 0.1)]})
    res = evaluate_proposals(GT2, only_v1, max_avg_nr_proposals=1)
    assert res["avg_recall"][-1] == pytest.approx(1 / 3, abs=1e-15)


def test_proposals_empty_results():
    res = evaluate_proposals(GT2, _sub({}))
    assert res["AUC"] == 0.0 and res["AR@100"] == 0.0
    assert res["recall"].shape == (10, 100) and not res["recall"].any()
    np.testing.assert_allclose(res["proposals_per_video"], np.arange(1, 101))
    res = evaluate_proposals(GT2, _sub({"v1": [], "v2": []}))
    assert res["AUC"] == 0.0


def test_proposals_thumos_budget_keys():
    res = evaluate_proposals(GT2, PROPS2, max_avg_nr_proposals=1000,
                             tiou_thresholds=parse_tiou_thresholds("0.3:0.7:0.1"))
    keys = [k for k in res if k.startswith("AR@")]
    assert keys == ["AR@1", "AR@5", "AR@10", "AR@50", "AR@100", "AR@200", "AR@500", "AR@1000"]
    assert res["AR@10"] == res["avg_recall"][0] and res["AR@50"] == res["avg_recall"][4]
    assert res["AR@1000"] == res["avg_recall"][99]
    assert res["recall"].shape == (5, 100)


def test_proposal_score_ties_follow_numpy_argsort():
    # two proposals with equal score and a budget of one: the kept one is the first of
    # np.argsort(scores)[::-1] (the official Series.argsort()[::-1]).
    gt = _gt({"v1": [(0, 10, "a")]})
    props = _sub({"v1": [(0, 10, 0.5), (40, 50, 0.5)]})
    res = evaluate_proposals(gt, props, max_avg_nr_proposals=1)
    kept = np.argsort(np.array([0.5, 0.5]))[::-1][0]
    assert res["avg_recall"][-1] == (1.0 if kept == 0 else 0.0)


def _det_case():
    gt = _gt({"v1": [(0, 10, "a"), (20, 30, "b")], "v2": [(0, 10, "a")],
              "t1": [(0, 10, "a")]}, subset="validation")
    gt["database"]["t1"]["subset"] = "training"
    return gt


def test_detections_by_hand():
    gt = _det_case()
    dets = _sub({
        "v1": [(0, 10, 0.9, "a"),        # TP (tIoU 1)
               (0, 10, 0.8, "a"),        # duplicate: FP
               (20, 30, 0.7, "b"),       # TP for b
               (0, 6, 0.6, "b")],        # FP (wrong place)
        "v2": [(1, 10, 0.5, "a")],       # tIoU 0.9: TP up to threshold 0.9
        "t1": [(0, 10, 0.95, "a")],      # training video: not filtered, a FP
    }, with_label=True)
    thr = [0.5, 0.9, 0.95]
    res = evaluate_detections(gt, dets, tiou_thresholds=thr)
    assert res["classes"] == ["a", "b"]
    # class a, order: t1 FP, v1 TP, v1 FP, v2 TP(<=0.9) ; npos = 2
    # thr .5/.9: prec [0, 1/2, 1/3, 2/4], rec [0, .5, .5, 1] -> envelope .5,.5,.5,.5
    #            AP = .5 * .5 + .5 * .5 = .5
    # thr .95:   v2 FP -> AP = .5 * .5 = .25
    np.testing.assert_allclose(res["ap"][:, 0], [0.5, 0.5, 0.25], atol=1e-15)
    # class b: TP then FP, npos 1 -> AP 1
    np.testing.assert_allclose(res["ap"][:, 1], [1.0, 1.0, 1.0], atol=1e-15)
    np.testing.assert_allclose(res["mAP_per_tiou"], [0.75, 0.75, 0.625], atol=1e-15)
    assert res["mAP"] == pytest.approx((0.75 + 0.75 + 0.625) / 3, abs=1e-15)
    # without the training-video false positive: TP, FP, TP -> prec [1, 1/2, 2/3],
    # envelope [1, 2/3, 2/3] -> AP = .5 * 1 + .5 * 2/3; at .95: TP, FP, FP -> .5
    dets["results"].pop("t1")
    res2 = evaluate_detections(gt, dets, tiou_thresholds=thr)
    np.testing.assert_allclose(res2["ap"][:, 0], [5 / 6, 5 / 6, 0.5], atol=1e-15)


def test_detections_video_without_gt_in_subset_is_fp():
    gt = _gt({"v1": [(0, 10, "a")], "v9": []})
    dets = _sub({"v1": [(0, 10, 0.5, "a")], "v9": [(0, 10, 0.9, "a")],
                 "unknown_video": [(0, 10, 0.8, "a")]}, with_label=True)
    res = evaluate_detections(gt, dets)
    # order: FP, FP, TP -> precision at the TP 1/3, AP 1/3
    np.testing.assert_allclose(res["ap"][:, 0], 1 / 3, atol=1e-15)


def test_detections_class_absent_from_predictions_and_empty_results():
    gt = _gt({"v1": [(0, 10, "a"), (20, 30, "b")]})
    res = evaluate_detections(gt, _sub({"v1": [(0, 10, 0.9, "a")]}, with_label=True))
    assert res["classes_without_predictions"] == ["b"]
    np.testing.assert_array_equal(res["ap"][:, 1], 0.0)
    np.testing.assert_array_equal(res["ap"][:, 0], 1.0)
    assert res["mAP"] == 0.5
    for empty in (_sub({}), _sub({"v1": []})):
        res = evaluate_detections(gt, empty)
        assert res["mAP"] == 0.0 and res["ap"].shape == (10, 2)
        assert res["classes_without_predictions"] == ["a", "b"]


def test_detections_unknown_label_is_skipped_with_warning_or_raises():
    gt = _gt({"v1": [(0, 10, "a")]})
    dets = _sub({"v1": [(0, 10, 0.9, "a"), (0, 10, 0.95, "zebra"), (5, 9, 0.2, "zebra")]},
                with_label=True)
    with pytest.warns(UserWarning, match="zebra"):
        res = evaluate_detections(gt, dets)
    assert res["mAP"] == 1.0 and res["unknown_labels"] == {"zebra": 2}
    assert res["n_predictions"] == 1
    with pytest.raises(ValueError, match="zebra"):
        evaluate_detections(gt, dets, unknown_labels="error")


def test_detection_score_ties_follow_numpy_argsort():
    # equal scores, same video, one GT: whichever comes first in np.argsort(s)[::-1] is
    # matched first (official). Pred 0 has tIoU 0.9, pred 1 tIoU 0.6.
    gt = _gt({"v1": [(0, 10, "a")]})
    dets = _sub({"v1": [(0, 9, 0.5, "a"), (0, 6, 0.5, "a")]}, with_label=True)
    res = evaluate_detections(gt, dets, tiou_thresholds=[0.5, 0.7])
    first = np.argsort(np.array([0.5, 0.5]))[::-1][0]
    assert res["ap"][0, 0] == 1.0
    # at 0.7 only pred 0 qualifies: AP 1 if it is ranked first, else 1/2
    assert res["ap"][1, 0] == (1.0 if first == 0 else 0.5)


def test_detection_gt_tiou_ties_follow_numpy_argsort():
    # P1 [5,15] has tIoU 1/3 with both GTs; the official order is np.argsort(tiou)[::-1]
    # (so GT 2 when argsort is stable on ties). P2 [10,20] only overlaps GT 2.
    gt = _gt({"v1": [(0, 10, "a"), (10, 20, "a")]})
    dets = _sub({"v1": [(5, 15, 0.9, "a"), (10, 20, 0.8, "a")]}, with_label=True)
    res = evaluate_detections(gt, dets, tiou_thresholds=[0.3])
    takes_gt2 = np.argsort(np.array([1 / 3, 1 / 3]))[::-1][0] == 1
    # P1 takes GT 2 -> P2 is a FP: prec [1, .5], rec [.5, .5] -> AP .5; else AP 1
    assert res["ap"][0, 0] == (0.5 if takes_gt2 else 1.0)
    ref, _ = reference_detection(gt, dets, tiou_thresholds=[0.3])
    assert res["ap"][0, 0] == ref[0, 0]


def test_zero_length_segments_nan_tiou_matches_like_official():
    # 0/0 tIoU is NaN; NaN sorts first and `NaN < thr` is False, so it matches (official)
    gt = _gt({"v1": [(5, 5, "a"), (0, 10, "a")]})
    dets = _sub({"v1": [(5, 5, 0.9, "a"), (0, 10, 0.8, "a")]}, with_label=True)
    res = evaluate_detections(gt, dets)
    ref, _ = reference_detection(gt, dets)
    np.testing.assert_allclose(res["ap"], ref, atol=TOL)
    assert res["mAP"] == 1.0


def test_segment_tiou():
    t = np.array([[0, 10], [20, 30]])
    c = np.array([[0, 10], [5, 15], [25, 40], [100, 110]])
    out = segment_tiou(t, c)
    assert out.shape == (4, 2)
    np.testing.assert_allclose(out, [[1, 0], [5 / 15, 0], [0, 5 / 20], [0, 0]])
    assert segment_tiou([0, 10], [5, 10]).shape == (1, 1)
    with pytest.raises(ValueError):
        segment_tiou(np.zeros((2, 3)), c)


# ---------------------------------------------------------------------------------------------
# Random tie-heavy cases against the plain reference loop
# ---------------------------------------------------------------------------------------------
def _random_case(seed, n_videos=25, n_classes=4):
    """Integer segments (a coarse grid of 5 for odd seeds: many exact tIoU ties between
    distinct GT segments), duplicated GT, scores from 6 values, zero-length segments."""
    rng = np.random.default_rng(seed)
    q = 5 if seed % 2 else 1
    labels = [f"c{i}" for i in range(n_classes)]
    gtv = {}
    for i in range(n_videos):
        anns = []
        for _ in range(int(rng.integers(0, 5))):
            s = q * int(rng.integers(0, 40 // q))
            anns.append((s, s + q * int(rng.integers(1, 15 // q)),
                         labels[int(rng.integers(n_classes))]))
        if anns and rng.random() < 0.4:                  # duplicated GT: tIoU ties
            anns.insert(int(rng.integers(len(anns))), anns[int(rng.integers(len(anns)))])
        gtv[f"v{i}"] = anns
    gt = _gt(gtv)
    gt["database"]["t0"] = {"subset": "training", "annotations": [
        {"segment": [0, 5], "label": "c0"}]}
    det, prop = {}, {}
    for v in list(gtv) + ["t0", "nowhere"]:
        if rng.random() < 0.1:
            continue
        n = int(rng.integers(0, 40))
        s = q * rng.integers(0, 45 // q, n)
        e = s + q * rng.integers(0, 15 // q, n)          # zero-length segments included
        sc = rng.integers(0, 6, n) / 5.0                 # many score ties
        lab = rng.integers(0, n_classes, n)
        det[v] = [(int(a), int(b), float(c), labels[int(k)]) for a, b, c, k in zip(s, e, sc, lab)]
        prop[v] = [(int(a), int(b), float(c)) for a, b, c in zip(s, e, sc)]
    return gt, _sub(det, with_label=True), _sub(prop)


@pytest.mark.parametrize("seed", range(8))
def test_random_detections_match_reference_loop(seed):
    gt, dets, _ = _random_case(seed)
    thr = np.array([0.1, 0.3, 0.5, 0.5, 0.7, 0.9]) if seed % 2 else np.linspace(0.5, 0.95, 10)
    res = evaluate_detections(gt, dets, tiou_thresholds=thr)
    ref, classes = reference_detection(gt, dets, tiou_thresholds=thr)
    assert classes == res["classes"]
    np.testing.assert_allclose(res["ap"], ref, rtol=0, atol=TOL)


@pytest.mark.parametrize("seed,budget", [(0, 100), (1, 7), (2, 3), (3, 1.5), (4, 20)])
def test_random_proposals_match_reference_loop(seed, budget):
    gt, _, props = _random_case(seed)
    thr = np.linspace(0.1, 0.9, 5) if seed % 2 else np.linspace(0.5, 0.95, 10)
    res = evaluate_proposals(gt, props, max_avg_nr_proposals=budget, tiou_thresholds=thr)
    rec, avg, ppv = reference_proposals(gt, props, max_avg_nr_proposals=budget,
                                        tiou_thresholds=thr)
    np.testing.assert_allclose(res["recall"], rec, rtol=0, atol=TOL)
    np.testing.assert_allclose(res["avg_recall"], avg, rtol=0, atol=TOL)
    np.testing.assert_allclose(res["proposals_per_video"], ppv, rtol=0, atol=TOL)


def test_max_avg_none_uses_all_proposals():
    gt, _, props = _random_case(3)
    res = evaluate_proposals(gt, props, max_avg_nr_proposals=None)
    n_videos = res["n_videos"]
    assert res["max_avg_nr_proposals"] == res["n_proposals"] / n_videos
    rec, _, _ = reference_proposals(gt, props, max_avg_nr_proposals=res["n_proposals"] / n_videos)
    np.testing.assert_allclose(res["recall"], rec, rtol=0, atol=TOL)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------
def test_malformed_inputs(tmp_path):
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(GT2))
    with pytest.raises(FileNotFoundError, match="nope.json"):
        evaluate_proposals(gt_path, tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json.*not valid JSON"):
        evaluate_detections(gt_path, bad)
    with pytest.raises(ValueError, match="bad.json"):
        evaluate_proposals(bad, PROPS2)
    nodb = tmp_path / "nodb.json"
    nodb.write_text(json.dumps({"version": 1}))
    with pytest.raises(ValueError, match="nodb.json.*'database'"):
        evaluate_proposals(nodb, PROPS2)
    nores = tmp_path / "nores.json"
    nores.write_text(json.dumps({"version": 1, "external_data": {}}))
    with pytest.raises(ValueError, match="nores.json.*'results'"):
        evaluate_proposals(gt_path, nores)
    seg3 = tmp_path / "seg3.json"
    seg3.write_text(json.dumps(_sub({"v1": [(0, 10, 0.5)]})).replace("[0, 10]", "[0, 10, 3]"))
    with pytest.raises(ValueError, match="seg3.json.*segment"):
        evaluate_proposals(gt_path, seg3)
    with pytest.raises(ValueError, match="segment"):
        evaluate_proposals(gt_path, {"results": {"v1": [{"segment": 5, "score": 1}]}})
    with pytest.raises(ValueError, match="lacks a key"):
        evaluate_proposals(gt_path, {"results": {"v1": [{"segment": [0, 1]}]}})
    with pytest.raises(ValueError, match="'label'"):
        evaluate_detections(gt_path, {"results": {"v1": [{"segment": [0, 1], "score": 1}]}})
    with pytest.raises(ValueError, match="score"):
        evaluate_proposals(gt_path, {"results": {"v1": [{"segment": [0, 1], "score": "x"}]}})
    with pytest.raises(ValueError, match="NaN"):
        evaluate_proposals(gt_path, {"results": {"v1": [{"segment": [0, 1],
                                                          "score": float("nan")}]}})
    with pytest.raises(ValueError, match="results of video"):
        evaluate_proposals(gt_path, {"results": {"v1": {"segment": [0, 1]}}})
    with pytest.raises(ValueError, match="no annotated video in subset 'testing'"):
        evaluate_proposals(gt_path, PROPS2, subset="testing")
    with pytest.raises(ValueError, match="segment"):
        evaluate_detections({"database": {"v": {"subset": "validation", "annotations": [
            {"segment": [1], "label": "a"}]}}}, _sub({}))
    with pytest.raises(ValueError, match="subset"):
        evaluate_detections({"database": {"v": {"annotations": []}}}, _sub({}))


# ---------------------------------------------------------------------------------------------
# Plots (shared.metrics.plots); the command-line evaluation lives in bsnpp/eval.py and
# actnet_challenge/eval.py, tested there
# ---------------------------------------------------------------------------------------------
def test_plot_ar_an(tmp_path):
    res = evaluate_proposals(GT2, PROPS2, max_avg_nr_proposals=2)
    out = tmp_path / "curve.png"
    plot_ar_an(res, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    both = tmp_path / "both.png"
    plot_ar_an_compare({"a": res, "b": evaluate_proposals(GT2, PROPS2, max_avg_nr_proposals=1)}, both)
    assert both.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_parse_tiou_thresholds():
    np.testing.assert_array_equal(parse_tiou_thresholds("0.5:0.95:0.05"),
                                  np.linspace(0.5, 0.95, 10))
    np.testing.assert_array_equal(parse_tiou_thresholds("0.3:0.7:0.1"), np.linspace(0.3, 0.7, 5))
    np.testing.assert_array_equal(parse_tiou_thresholds("0.3,0.5"), [0.3, 0.5])
    with pytest.raises(ValueError):
        parse_tiou_thresholds("0.5:0.1:0.05")
