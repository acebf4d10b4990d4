"""The LVIS evaluator against the official lvis-api vectors, against the loop implementation of the
same protocol on randomised bbox / segm cases, and on bad inputs.

fixtures/lvis/{micro,small,medium}: copies (gzipped) of the project's vectors lvis/* — LVIS-format GT
with neg / not-exhaustive lists, polygon areas, images over 300 detections, and the numbers lvis-api
``LVISEval`` (0.5.3, iou_type bbox) printed for them. Tolerance 1e-9.

fixtures/lvis/segm: the mask-AP reference case, written once by fixtures/lvis/make_segm_case.py with
lvis-api 0.5.3 itself (``LVISEval(iou_type="segm")``; how to run it is in its docstring): randomised
GT polygons and RLE detection masks with every federated rule and quirk, expected numbers for the
results with boxes (box areas) and without (mask areas). Tolerance 1e-9.
"""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eql.lvis_eval import LVISFormatError, evaluate
from eql.lvis_eval_loop import evaluate_loop, synthetic_case
from shared.metrics.detection import load_json

FIX = Path(__file__).parent / "fixtures" / "lvis"
TOL = 1e-9


def _case(name):
    d = FIX / name
    return load_json(d / "gt.json.gz"), load_json(d / "dt.json.gz"), json.loads((d / "expected_bbox.json").read_text())


def _assert_matches_expected(res, exp):
    for k, v in exp["results"].items():
        assert abs(res[k] - v) <= TOL, (k, res[k], v)
    for k, v in exp.get("per_category_AP", {}).items():
        got = res["per_category_AP"][int(k)]
        if v is None:
            assert math.isnan(got), (k, got)
        else:
            assert abs(got - v) <= TOL, (k, got, v)


@pytest.mark.parametrize("name", ["micro", "small", "medium"])
def test_vectorised_evaluator_equals_lvis_api(name):
    gt, dt, exp = _case(name)
    _assert_matches_expected(evaluate(gt, dt, iou_type="bbox"), exp)


@pytest.mark.parametrize("with_boxes", [True, False], ids=["box_and_mask", "mask_only"])
def test_segm_equals_lvis_api(with_boxes):
    gt, dt = load_json(FIX / "segm" / "gt.json.gz"), load_json(FIX / "segm" / "dt.json.gz")
    exp = json.loads((FIX / "segm" / "expected_segm.json").read_text())
    suffix = "" if with_boxes else "_masks_only"
    if not with_boxes:
        dt = [{k: v for k, v in d.items() if k != "bbox"} for d in dt]
    assert len({d["image_id"] for d in dt}) > 20 and max(
        sum(d["image_id"] == i for d in dt) for i in {d["image_id"] for d in dt}) > 300
    _assert_matches_expected(evaluate(gt, dt, iou_type="segm"),
                             {"results": exp["results" + suffix], "per_category_AP": exp["per_category_AP" + suffix]})


def test_micro_hand_derived_numbers_and_per_image_limit():
    gt, dt, exp = _case("micro")
    res = evaluate(gt, dt)
    for k, v in exp["hand_derived"].items():
        assert abs(res[k] - v) <= 1e-12, k
    assert math.isnan(res["per_category_AP"][4])       # r_nogt: excluded everywhere


@pytest.mark.parametrize("name", ["micro", "small"])
def test_loop_reference_also_equals_lvis_api(name):
    gt, dt, exp = _case(name)
    _assert_matches_expected(evaluate_loop(gt, dt), exp)


@pytest.mark.parametrize("seed,iou_type", [(0, "bbox"), (1, "bbox"), (2, "segm")])
def test_vectorised_equals_loop_on_randomised_cases(seed, iou_type):
    gt, dt = synthetic_case(24, 9, seed, dets_per_img=30, segm=iou_type == "segm")
    a = evaluate(gt, dt, iou_type=iou_type, return_arrays=True, chunk_dets=150)   # several chunks
    b = evaluate_loop(gt, dt, iou_type=iou_type)
    np.testing.assert_array_equal(a["precision"], b["precision"])
    np.testing.assert_array_equal(a["recall"], b["recall"])
    for k in ("AP", "APr", "APc", "APf", "AR@300", "ARs@300"):
        assert a[k] == b[k], k
    assert a["AP"] > 0.05


def test_segm_of_box_results_uses_the_box_polygon():
    gt, dt = synthetic_case(10, 5, 3, dets_per_img=10, segm=False, quirks=False)
    a = evaluate(gt, dt, iou_type="segm")
    b = evaluate_loop(gt, dt, iou_type="segm")
    assert a["AP"] == b["AP"] and a["APr"] == b["APr"]


def test_columns_input_and_max_dets():
    gt, dt, exp = _case("small")
    cols = {"image_id": [d["image_id"] for d in dt], "category_id": [d["category_id"] for d in dt],
            "score": [d["score"] for d in dt], "bbox": [d["bbox"] for d in dt]}
    assert evaluate(gt, cols)["AP"] == pytest.approx(exp["results"]["AP"], abs=TOL)
    few = evaluate(gt, dt, max_dets=20)
    assert "AR@20" in few and few["AP"] < exp["results"]["AP"]


def test_bad_inputs_name_the_problem():
    gt, dt, _ = _case("micro")
    bad = json.loads(json.dumps(gt))
    del bad["images"][1]["neg_category_ids"]
    with pytest.raises(LVISFormatError, match="image 2 has no 'neg_category_ids'"):
        evaluate(bad, dt)
    with pytest.raises(LVISFormatError, match="absent from the ground truth"):
        evaluate(gt, dt + [{"image_id": 999, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.1}])
    with pytest.raises(LVISFormatError, match="result 1"):
        evaluate(gt, [dt[0], {"image_id": 1, "category_id": 1, "score": 0.5}])
    with pytest.raises(ValueError, match="iou_type"):
        evaluate(gt, dt, iou_type="keypoints")
    with pytest.raises(FileNotFoundError):
        evaluate(FIX / "nope.json", dt)


def test_cli_prints_metrics_and_writes_json(tmp_path):
    gt, dt, exp = _case("small")
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dt))
    out = subprocess.run([sys.executable, "-m", "eql.lvis_eval", "--gt", str(tmp_path / "gt.json"), "--results",
                          str(tmp_path / "dt.json"), "--iou-type", "bbox", "--out", str(tmp_path / "m.json")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"{100 * exp['results']['AP']:.2f}" in out.stdout and "APr" in out.stdout
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["per_category_AP"]["10"] is None and abs(saved["APc"] - exp["results"]["APc"]) <= TOL
