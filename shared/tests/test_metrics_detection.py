"""Tests of shared.metrics.detection: hand-worked IoU / matching / AP, the reference vector produced by
pycocotools COCOeval (fixtures/coco/medium), and live pycocotools on randomised adversarial cases.

fixtures/coco/medium: copy of the project's reference vector ``coco/medium`` (synthetic COCO-format case,
seed 4004, 300 images, 20 categories, 1,734 GT incl. 37 crowds, 4,544 detections; gt/dt gzipped) and the
numbers pycocotools ``COCOeval(iouType='bbox')`` printed for it with default parameters (tolerance 1e-9)."""
import contextlib
import copy
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from shared.metrics.detection import (
    COCO_REC_THRS,
    COCO_STAT_NAMES,
    ap_all_points,
    ap_coco_101,
    box_iou,
    box_iou_coco,
    coco_evaluate,
    load_json,
    match_greedy,
    match_greedy_grouped,
    pairwise_iou_grouped,
)

FIX = Path(__file__).parent / "fixtures" / "coco" / "medium"
TOL = 1e-9

pycocotools = pytest.importorskip("pycocotools")
from pycocotools import mask as mask_utils  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402


def run_pycocotools(gt: dict, dts: list, **params) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO()
        g.dataset = copy.deepcopy(gt)
        g.createIndex()
        d = g.loadRes(copy.deepcopy(dts))
        ev = COCOeval(g, d, "bbox")
        for k, v in params.items():
            setattr(ev.params, k, v)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def assert_same_as_pycocotools(res: dict, ev: COCOeval) -> None:
    np.testing.assert_allclose(res["stats"], ev.stats, rtol=0, atol=TOL)
    for name, value in zip(COCO_STAT_NAMES, ev.stats):
        assert abs(res[name] - value) <= TOL
    np.testing.assert_allclose(res["precision"], ev.eval["precision"], rtol=0, atol=TOL)
    np.testing.assert_allclose(res["recall"], ev.eval["recall"], rtol=0, atol=TOL)
    np.testing.assert_allclose(res["scores"], ev.eval["scores"], rtol=0, atol=TOL)


@pytest.fixture(scope="module")
def medium():
    return load_json(FIX / "gt.json.gz"), load_json(FIX / "dt.json.gz"), json.loads((FIX / "expected_bbox.json").read_text())


# ------------------------------------------------------------------------------------------ reference vector
def test_medium_matches_expected(medium):
    gt, dt, exp = medium
    res = coco_evaluate(gt, dt)
    for name in COCO_STAT_NAMES:
        assert abs(res[name] - exp["stats"][name]) <= TOL, name
    np.testing.assert_allclose(res["stats"], exp["stats_list"], rtol=0, atol=TOL)
    assert set(res["per_category_AP"]) == {int(k) for k in exp["per_category_AP"]}
    for k, v in exp["per_category_AP"].items():
        got = res["per_category_AP"][int(k)]
        if v is None:
            assert math.isnan(got)  # category without GT (it has detections in this fixture)
        else:
            assert abs(got - v) <= TOL, k


def test_medium_from_gz_paths(medium):
    res = coco_evaluate(FIX / "gt.json.gz", str(FIX / "dt.json.gz"))
    assert abs(res["AP"] - medium[2]["stats"]["AP"]) <= TOL


def test_medium_matches_live_pycocotools(medium):
    gt, dt, _ = medium
    assert_same_as_pycocotools(coco_evaluate(gt, dt), run_pycocotools(gt, dt))


def test_medium_with_params_matches_live_pycocotools(medium):
    gt, dt, _ = medium
    img_ids = sorted(im["id"] for im in gt["images"])[::3]
    cat_ids = sorted(c["id"] for c in gt["categories"])[:12]
    res = coco_evaluate(gt, dt, img_ids=img_ids, cat_ids=cat_ids, max_dets=[1, 5, 20])
    ev = run_pycocotools(gt, dt, imgIds=img_ids, catIds=cat_ids, maxDets=[1, 5, 20])
    assert_same_as_pycocotools(res, ev)


# ------------------------------------------------------------------------------------- randomised vs live
def make_case(seed: int, n_img: int = 40, n_cat: int = 4, id0: bool = False):
    """Coarse integer boxes and quantised scores (ties everywhere), crowds, areas on the 32^2 / 96^2
    boundaries, >100 detections in one image-category, unknown-category detections, empty images."""
    rng = np.random.default_rng(seed)
    img_ids = sorted(rng.choice(10 ** 6, n_img, replace=False).tolist())
    cat_ids = sorted(rng.choice(200, n_cat, replace=False).tolist())
    sizes = [4, 8, 16, 24, 32, 48, 64, 96, 128]
    images = [{"id": i, "width": 640, "height": 480} for i in img_ids]
    anns, dts = [], []
    ann_id = 0 if id0 else 1
    for ii, img in enumerate(img_ids):
        if ii % 9 == 4:
            continue  # image with nothing at all
        for cat in cat_ids:
            if rng.random() < 0.3:
                continue
            n_gt = int(rng.integers(0, 6))
            gts = []
            for _ in range(n_gt):
                w, h = float(rng.choice(sizes)), float(rng.choice(sizes))
                x, y = float(rng.integers(0, 20) * 8), float(rng.integers(0, 15) * 8)
                u = rng.random()
                area = 32.0 ** 2 if u < 0.1 else 96.0 ** 2 if u < 0.2 else w * h if u < 0.6 else round(w * h * rng.uniform(0.3, 1), 2)
                anns.append({"id": ann_id, "image_id": img, "category_id": cat, "bbox": [x, y, w, h],
                             "area": area, "iscrowd": int(rng.random() < 0.12)})
                gts.append((x, y, w, h))
                ann_id += 1
                if rng.random() < 0.1:  # exact duplicate GT: equal IoUs, tie-break to the last one
                    anns.append(dict(anns[-1], id=ann_id, iscrowd=0))
                    ann_id += 1
            n_dt = 120 if (ii == 1 and cat == cat_ids[0]) else int(rng.integers(0, 8))
            for _j in range(n_dt):
                if gts and rng.random() < 0.7:
                    x, y, w, h = gts[int(rng.integers(len(gts)))]
                    x, y = x + float(rng.integers(-2, 3) * 2), y + float(rng.integers(-2, 3) * 2)
                    w, h = max(2.0, w + float(rng.integers(-2, 3) * 2)), max(2.0, h + float(rng.integers(-2, 3) * 2))
                else:
                    w, h = float(rng.choice(sizes)), float(rng.choice(sizes))
                    x, y = float(rng.integers(0, 20) * 8), float(rng.integers(0, 15) * 8)
                if rng.random() < 0.1:
                    w, h = 32.0, 32.0  # detection area exactly on a boundary
                dts.append({"image_id": img, "category_id": cat, "bbox": [x, y, w, h],
                            "score": float(rng.integers(1, 10)) / 10})
        if rng.random() < 0.2:
            dts.append({"image_id": img, "category_id": 999, "bbox": [0.0, 0.0, 10.0, 10.0], "score": 0.5})
    gt = {"images": images, "annotations": anns, "categories": [{"id": c, "name": str(c)} for c in cat_ids]}
    return gt, dts


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_adversarial_cases_match_live_pycocotools(seed):
    gt, dts = make_case(seed, id0=(seed == 3))
    assert_same_as_pycocotools(coco_evaluate(gt, dts), run_pycocotools(gt, dts))


def test_pycocotools_gt_id_zero_quirk():
    # one GT with id 0, one detection exactly on it: pycocotools counts the detection as a false positive
    gt = {"images": [{"id": 1}], "categories": [{"id": 1}],
          "annotations": [{"id": 0, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0}]}
    dts = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9}]
    res, ev = coco_evaluate(gt, dts), run_pycocotools(gt, dts)
    assert_same_as_pycocotools(res, ev)
    assert res["AP"] == 0.0


# --------------------------------------------------------------------------------------- hand-worked cases
def test_box_iou_hand_worked():
    a_xyxy = [[0, 0, 10, 10]]
    b_xyxy = [[5, 5, 15, 15], [10, 0, 20, 10], [0, 0, 10, 10], [20, 20, 30, 30], [2, 2, 2, 8]]
    np.testing.assert_allclose(box_iou(a_xyxy, b_xyxy, "xyxy"), [[25 / 175, 0.0, 1.0, 0.0, 0.0]], rtol=0, atol=1e-15)
    a_xywh = [[0, 0, 10, 10]]
    b_xywh = [[5, 5, 10, 10], [10, 0, 10, 10], [0, 0, 10, 10], [20, 20, 10, 10], [2, 2, 0, 6]]
    np.testing.assert_allclose(box_iou(a_xywh, b_xywh, "xywh"), [[25 / 175, 0.0, 1.0, 0.0, 0.0]], rtol=0, atol=1e-15)
    assert box_iou(np.zeros((0, 4)), b_xywh, "xywh").shape == (0, 5)
    assert box_iou(a_xywh, np.zeros((0, 4)), "xywh").shape == (1, 0)
    with pytest.raises(ValueError):
        box_iou(a_xywh, b_xywh, "cxcywh")


def test_box_iou_crowd_is_intersection_over_detection_area():
    det = [[0, 0, 10, 10], [0, 0, 200, 200]]
    crowd = [[5, 5, 100, 100]]
    iou = box_iou(det, crowd, "xywh", iscrowd=[1])
    # det 0: intersection 5x5 = 25 over its own area 100; det 1: 100*100 over 200*200
    np.testing.assert_allclose(iou, [[0.25], [0.25]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(box_iou(det, crowd, "xywh", iscrowd=[0]), [[25 / (100 + 10000 - 25)], [0.25]],
                               rtol=0, atol=1e-15)


def test_box_iou_bit_identical_to_pycocotools():
    rng = np.random.default_rng(7)
    d = np.round(rng.uniform(0, 50, (40, 4)), 2)
    g = np.round(rng.uniform(0, 50, (30, 4)), 2)
    crowd = rng.random(30) < 0.3
    ref = mask_utils.iou(d.tolist(), g.tolist(), crowd.astype(np.uint8).tolist())
    assert np.array_equal(box_iou_coco(d, g, crowd), ref)


def test_match_greedy_score_order_and_thresholds():
    ious = np.array([[0.6, 0.7], [0.8, 0.55]])
    m = match_greedy(ious, iou_thresholds=0.5, det_scores=[0.9, 0.8])
    assert m.dt_match.tolist() == [1, 0] and m.gt_match.tolist() == [1, 0]
    m = match_greedy(ious, iou_thresholds=[0.5, 0.75], det_scores=[0.9, 0.8])
    assert m.dt_match.tolist() == [[1, 0], [-1, 0]]
    # det 1 first: it takes GT 0 (0.8), det 0 then takes GT 1 (0.7); at 0.65 too
    m = match_greedy(ious, iou_thresholds=0.65, det_scores=[0.1, 0.8])
    assert m.dt_match.tolist() == [1, 0]
    # without scores, rows in order: det 0 takes GT 1, det 1 takes GT 0
    assert match_greedy(ious, iou_thresholds=0.5).dt_match.tolist() == [1, 0]
    # a GT is matched once: det 1 finds GT 0 taken at 0.5 -> falls back to nothing above 0.9
    m = match_greedy([[0.95, 0.1], [0.92, 0.2]], iou_thresholds=0.9)
    assert m.dt_match.tolist() == [0, -1] and m.gt_match.tolist() == [0, -1]


def test_match_greedy_equal_scores_keep_input_order_and_equal_ious_take_last_gt():
    m = match_greedy([[0.7, 0.7, 0.6]], iou_thresholds=0.5)
    assert m.dt_match.tolist() == [1]
    m = match_greedy([[0.9], [0.9]], iou_thresholds=0.5, det_scores=[0.5, 0.5])
    assert m.dt_match.tolist() == [0, -1]


def test_match_greedy_ignore_flags_and_crowd():
    # non-ignored GT preferred even with lower IoU; fallback to the ignored one above its IoU
    ious = [[0.55, 0.9]]
    m = match_greedy(ious, gt_ignore=[0, 1], iou_thresholds=[0.5, 0.6])
    assert m.dt_match.tolist() == [[0], [1]] and m.dt_ignore.tolist() == [[False], [True]]
    # crowd (ignored) GT absorbs several detections
    m = match_greedy([[0.7], [0.8], [0.6]], gt_ignore=[1], gt_crowd=[1], iou_thresholds=0.5)
    assert m.dt_match.tolist() == [0, 0, 0] and m.dt_ignore.tolist() == [True, True, True]
    # an ignored non-crowd GT (e.g. outside the area range) is matched only once
    m = match_greedy([[0.7], [0.8]], gt_ignore=[1], gt_crowd=[0], iou_thresholds=0.5)
    assert m.dt_match.tolist() == [0, -1] and m.dt_ignore.tolist() == [True, False]
    # empty sides
    m = match_greedy(np.zeros((0, 3)), iou_thresholds=[0.5, 0.7])
    assert m.dt_match.shape == (2, 0) and m.gt_match.tolist() == [[-1] * 3] * 2
    m = match_greedy(np.zeros((2, 0)), iou_thresholds=0.5)
    assert m.dt_match.tolist() == [-1, -1]


def test_match_greedy_grouped_equals_per_group():
    rng = np.random.default_rng(3)
    nd, ng = [3, 0, 5, 2, 7], [2, 4, 0, 1, 6]
    dt = np.round(rng.uniform(0, 30, (sum(nd), 4)), 0)
    gtb = np.round(rng.uniform(0, 30, (sum(ng), 4)), 0)
    crowd = rng.random(sum(ng)) < 0.2
    ig = np.stack([crowd, crowd | (rng.random(sum(ng)) < 0.3)])
    flat = pairwise_iou_grouped(dt, gtb, nd, ng, crowd)
    res = match_greedy_grouped(flat, nd, ng, ig, crowd, [0.1, 0.3, 0.5])
    d0 = g0 = 0
    for a, b in zip(nd, ng):
        ious = box_iou(dt[d0:d0 + a], gtb[g0:g0 + b], "xywh", crowd[g0:g0 + b])
        for ai in range(2):
            one = match_greedy(ious, ig[ai, g0:g0 + b], crowd[g0:g0 + b], [0.1, 0.3, 0.5])
            exp = np.where(one.dt_match >= 0, one.dt_match + g0, -1)
            assert np.array_equal(res.dt_match[ai][:, d0:d0 + a], exp)
            assert np.array_equal(res.dt_ignore[ai][:, d0:d0 + a], one.dt_ignore)
        d0, g0 = d0 + a, g0 + b


def test_ap_coco_101_hand_worked():
    # dets: TP, FP, TP with 2 GT -> recall .5 .5 1, precision 1 .5 2/3, envelope 1 2/3 2/3
    res = ap_coco_101([1, 0, 1], [0, 1, 0], 2, scores=[0.9, 0.8, 0.7])
    expected = (51 * 1.0 + 50 * (2 / 3)) / 101   # r in [0, .5] -> 1, r in (.5, 1] -> 2/3
    assert abs(float(res.ap) - expected) < 1e-12
    assert float(res.recall) == 1.0
    assert res.scores[50] == 0.9 and res.scores[51] == 0.7
    # recall never reaches the top thresholds -> precision 0 there
    res = ap_coco_101([1, 0], [0, 1], 4)
    assert abs(float(res.ap) - 26 / 101) < 1e-12   # r in [0, .25] -> 1 (26 points), rest 0
    # ignored detections (tp = fp = 0) change nothing; no detections -> 0; no GT -> NaN / -1
    a = ap_coco_101([1, 0, 0, 1], [0, 0, 1, 0], 3)
    b = ap_coco_101([1, 0, 1], [0, 1, 0], 3)
    assert np.array_equal(a.precision, b.precision)
    assert float(ap_coco_101(np.zeros(0), np.zeros(0), 3).ap) == 0.0
    none = ap_coco_101([1], [0], 0)
    assert math.isnan(float(none.ap)) and float(none.recall) == -1
    # vectorised over leading dims
    v = ap_coco_101([[1, 0, 1], [1, 0, 0]], [[0, 1, 0], [0, 1, 1]], 2)
    assert v.precision.shape == (2, len(COCO_REC_THRS)) and abs(v.ap[0] - expected) < 1e-12


def test_ap_all_points_hand_worked():
    assert abs(ap_all_points([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3]) - (0.5 * 1 + 0.5 * 2 / 3)) < 1e-15
    assert abs(ap_all_points([0.25, 0.25, 0.5], [1.0, 0.5, 2 / 3]) - (0.25 + 0.25 * 2 / 3)) < 1e-15
    assert ap_all_points([], []) == 0.0
    with pytest.raises(ValueError):
        ap_all_points([0.5, 0.2], [1.0, 1.0])


# ---------------------------------------------------------------------------------- edge cases of COCOeval
def _tiny_gt():
    return {"images": [{"id": 10}, {"id": 11}],
            "categories": [{"id": 1}, {"id": 2}, {"id": 3}],
            "annotations": [
                {"id": 1, "image_id": 10, "category_id": 1, "bbox": [0, 0, 20, 20], "area": 400, "iscrowd": 0},
                {"id": 2, "image_id": 10, "category_id": 1, "bbox": [50, 50, 100, 100], "area": 10000, "iscrowd": 0},
                {"id": 3, "image_id": 11, "category_id": 2, "bbox": [0, 0, 50, 50], "area": 2500, "iscrowd": 0},
                {"id": 4, "image_id": 11, "category_id": 2, "bbox": [100, 100, 300, 300], "area": 90000, "iscrowd": 1},
            ]}


def test_empty_detections_give_zero_not_crash():
    res = coco_evaluate(_tiny_gt(), [])
    for name in COCO_STAT_NAMES:
        assert res[name] == 0.0, name
    assert res["per_category_AP"][1] == 0.0 and math.isnan(res["per_category_AP"][3])


def test_category_without_gt_and_crowd():
    dts = [
        {"image_id": 10, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.9},       # TP (small)
        {"image_id": 10, "category_id": 1, "bbox": [50, 50, 100, 100], "score": 0.8},   # TP (large)
        {"image_id": 11, "category_id": 2, "bbox": [0, 0, 50, 50], "score": 0.7},       # TP (medium)
        {"image_id": 11, "category_id": 2, "bbox": [150, 150, 40, 40], "score": 0.95},  # inside the crowd: ignored
        {"image_id": 11, "category_id": 2, "bbox": [160, 160, 40, 40], "score": 0.94},  # inside the crowd: ignored
        {"image_id": 10, "category_id": 3, "bbox": [0, 0, 20, 20], "score": 0.99},      # category without GT
    ]
    res = coco_evaluate(_tiny_gt(), dts)
    assert res["AP"] == pytest.approx(1.0, abs=1e-12)
    assert res["per_category_AP"][1] == pytest.approx(1.0) and res["per_category_AP"][2] == pytest.approx(1.0)
    assert math.isnan(res["per_category_AP"][3])
    assert_same_as_pycocotools(res, run_pycocotools(_tiny_gt(), dts))
    # without the crowd flag the two boxes would be false positives ranked first
    gt = _tiny_gt()
    gt["annotations"][3]["iscrowd"] = 0
    res2 = coco_evaluate(gt, dts)
    assert res2["per_category_AP"][2] < 0.9
    assert_same_as_pycocotools(res2, run_pycocotools(gt, dts))


def test_unknown_image_raises_and_unknown_category_is_dropped():
    with pytest.raises(ValueError):
        coco_evaluate(_tiny_gt(), [{"image_id": 99, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1.0}])
    dts = [{"image_id": 10, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.9},
           {"image_id": 10, "category_id": 77, "bbox": [0, 0, 20, 20], "score": 0.99}]
    res = coco_evaluate(_tiny_gt(), dts)
    assert res["per_category_AP"] == pytest.approx({1: 51 / 101, 2: 0.0, 3: float("nan")}, nan_ok=True)
    with pytest.raises(NotImplementedError):
        coco_evaluate(_tiny_gt(), dts, iou_type="segm")
