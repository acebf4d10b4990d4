import json

import pytest

from actnet_challenge.detect import assemble_detections, detection_metrics, top1_label_baseline
from shared.formats.activitynet import read_proposal_json

PROPS = {"version": "1.3", "external_data": {}, "results": {
    "v1": [{"segment": [0.0, 10.0], "score": 0.8}, {"segment": [20.0, 40.0], "score": 0.5}],
    "v2": [{"segment": [5.0, 6.0], "score": 0.9}]}}
SCORES = {"results": {"v1": [{"label": "a", "score": 0.6}, {"label": "b", "score": 0.3}, {"label": "c", "score": 0.1}],
                      "v2": [{"label": "c", "score": 0.7}, {"label": "a", "score": 0.2}]}}


def test_fusion_arithmetic_top2_product():
    dets = assemble_detections(PROPS, SCORES, top_k_classes=2)["results"]
    v1 = {(tuple(d["segment"]), d["label"]): d["score"] for d in dets["v1"]}
    assert v1 == pytest.approx({((0, 10), "a"): 0.48, ((20, 40), "a"): 0.30,
                                ((0, 10), "b"): 0.24, ((20, 40), "b"): 0.15})
    assert [d["score"] for d in dets["v1"]] == sorted((d["score"] for d in dets["v1"]), reverse=True)


def test_exponents_max_detections_and_baseline():
    d = assemble_detections(PROPS, SCORES, top_k_classes=1, proposal_exponent=2.0, class_exponent=0.5,
                            max_detections=1)["results"]["v1"]
    assert len(d) == 1 and d[0]["score"] == pytest.approx(0.8 ** 2 * 0.6 ** 0.5) and d[0]["label"] == "a"
    base = top1_label_baseline(PROPS, SCORES)["results"]
    assert [(x["label"], x["score"]) for x in base["v1"]] == [("a", 0.8), ("a", 0.5)]
    assert base["v2"] == [{"segment": [5.0, 6.0], "score": 0.9, "label": "c"}]


def test_video_without_scores_gets_no_detections():
    scores = {"results": {"v1": SCORES["results"]["v1"]}}
    dets = assemble_detections(PROPS, scores)
    assert dets["results"]["v2"] == [] and "1 videos without class scores" in dets["external_data"]["details"]


def test_detection_json_round_trip_and_evaluation(tmp_path):
    dets = assemble_detections(PROPS, SCORES)
    path = tmp_path / "det.json"
    path.write_text(json.dumps(dets))
    back = read_proposal_json(path, require_label=True)
    assert back["v1"][0]["label"] == "a" and len(back["v1"]) == 4
    gt = {"database": {"v1": {"subset": "validation", "duration": 50, "annotations": [{"segment": [0, 10], "label": "a"}]},
                       "v2": {"subset": "validation", "duration": 50, "annotations": [{"segment": [5, 6], "label": "c"}]}}}
    with pytest.warns(UserWarning, match="absent from the 'validation' ground truth: 'b'"):
        m = detection_metrics(gt, path)  # the second class of v1 is not in this GT: skipped
    assert m["mAP@0.5"] == pytest.approx(100.0) and m["mAP"] == pytest.approx(100.0)
