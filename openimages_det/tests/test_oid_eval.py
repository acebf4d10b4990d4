"""The Open Images Challenge metric: the official numbers on the reference vectors, the official
hierarchy expansion, the loop with the official structure on randomised cases, and hand-made cases."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from openimages_det.annotations import read_boxes, read_classes, read_image_labels
from openimages_det.hierarchy import Hierarchy, HierarchyError, load_hierarchy
from openimages_det.oid_eval import ap_key, evaluate, expand_hierarchy, get_args_parser, main, map_key, per_class_ap
from openimages_det.oid_eval_loop import evaluate_loop, random_case

MICRO = Path(__file__).parent / "fixtures" / "oid_micro"
MAP = map_key()


def _official_metrics() -> dict:
    with open(MICRO / "metrics.csv") as f:
        return {k: float(v) for k, v in csv.reader(f)}


def test_micro_equals_official_with_expansion():
    classes = [c for c, _ in read_classes(MICRO / "labelmap.pbtxt")]
    got = evaluate(MICRO / "gt_boxes.csv", MICRO / "gt_labels.csv", MICRO / "predictions.csv", classes=classes,
                   hierarchy=MICRO / "hierarchy.json")
    want = _official_metrics()
    assert list(got) == list(want)  # same keys, same order (label map order)
    for k, v in want.items():
        assert abs(got[k] - v) <= 1e-9, k
    expected = json.loads((MICRO / "expected.json").read_text())
    assert abs(got[MAP] - expected["mAP@0.5IOU"]) <= 1e-9
    for name, ap in expected["per_class_AP"].items():
        assert abs(per_class_ap(got)[name] - ap) <= 1e-9


def test_micro_pre_expanded_and_cli(tmp_path):
    out = tmp_path / "metrics.csv"
    args = get_args_parser().parse_args([
        "--boxes", str(MICRO / "gt_boxes_expanded.csv"), "--labels", str(MICRO / "gt_labels_expanded.csv"),
        "--predictions", str(MICRO / "predictions.csv"), "--classes", str(MICRO / "labelmap.pbtxt"),
        "--out", str(out)])
    main(args)
    with open(out) as f:
        got = {k: float(v) for k, v in csv.reader(f)}
    want = _official_metrics()
    assert list(got) == list(want)
    assert max(abs(got[k] - want[k]) for k in want) <= 1e-9


def test_expansion_equals_official_tool():
    h = MICRO / "hierarchy.json"
    ids = {"ImageID": str, "LabelName": str}
    boxes = expand_hierarchy(read_boxes(MICRO / "gt_boxes.csv"), h, "boxes").astype(ids)
    pd.testing.assert_frame_equal(boxes, read_boxes(MICRO / "gt_boxes_expanded.csv").astype(ids))
    labels = expand_hierarchy(read_image_labels(MICRO / "gt_labels.csv"), h, "labels").astype(ids)
    pd.testing.assert_frame_equal(labels, read_image_labels(MICRO / "gt_labels_expanded.csv").astype(ids))


def _dag():
    # root -> animal -> {dog, pet}; root -> home -> pet; pet -> puppy (puppy has two paths to root)
    return {"LabelName": "/m/root", "Subcategory": [
        {"LabelName": "/m/animal", "Subcategory": [{"LabelName": "/m/dog"},
                                                   {"LabelName": "/m/pet", "Subcategory": [{"LabelName": "/m/puppy"}]}]},
        {"LabelName": "/m/home", "Subcategory": [{"LabelName": "/m/pet", "Subcategory": [{"LabelName": "/m/puppy"}]}]}]}


def test_two_parent_expansion_adds_each_ancestor_once():
    h = load_hierarchy(_dag())
    assert set(h.ancestors("/m/puppy")) == {"/m/pet", "/m/animal", "/m/home"}
    assert set(h.descendants("/m/animal")) == {"/m/dog", "/m/pet", "/m/puppy"}
    assert h.depth() == 3
    boxes = pd.DataFrame([("i", "/m/puppy", 0.1, 0.5, 0.1, 0.5, 0)],
                         columns=["ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax", "IsGroupOf"])
    out = expand_hierarchy(boxes, h, "boxes")
    assert list(out["LabelName"]) == ["/m/puppy", "/m/pet", "/m/animal", "/m/home"]
    labels = pd.DataFrame([("i", "/m/home", 0), ("i", "/m/dog", 1)], columns=["ImageID", "LabelName", "Confidence"])
    out = expand_hierarchy(labels, h, "labels")
    assert list(out["LabelName"]) == ["/m/home", "/m/pet", "/m/puppy", "/m/dog", "/m/animal"]
    assert list(out["Confidence"]) == [0, 0, 0, 1, 1]


@pytest.mark.parametrize("tree,msg", [
    ({"LabelName": "/m/r", "Subcategory": [{"Subcategory": []}]}, "has no 'LabelName'"),
    ({"LabelName": "/m/r", "Subcategory": [{"LabelName": "/m/a", "Subcategory": {"LabelName": "/m/b"}}]},
     "must be a list"),
    ({"LabelName": "/m/r", "Subcategory": [
        {"LabelName": "/m/a", "Subcategory": [{"LabelName": "/m/b"}]},
        {"LabelName": "/m/b", "Subcategory": [{"LabelName": "/m/a"}]}]}, "cycle"),
])
def test_malformed_hierarchy(tree, msg, tmp_path):
    with pytest.raises(HierarchyError, match=msg):
        Hierarchy.from_dict(tree)
    p = tmp_path / "h.json"
    p.write_text(json.dumps(tree))
    with pytest.raises(HierarchyError, match="h.json"):
        load_hierarchy(p)


@pytest.mark.parametrize("seed", [0, 1])
def test_vectorised_equals_loop_on_random_cases(seed):
    boxes, labels, preds, classes = random_case(120, 25, seed)
    fast = evaluate(boxes, labels, preds, classes=classes)
    slow = evaluate_loop(boxes, labels, preds, classes=classes)
    assert list(fast) == list(slow)
    for k in fast:
        assert (math.isnan(fast[k]) and math.isnan(slow[k])) or abs(fast[k] - slow[k]) <= 1e-12, k
    assert 0.1 < fast[MAP] < 0.9


def test_vectorised_equals_loop_with_hierarchy():
    boxes, labels, preds, classes = random_case(80, 6, 3)
    tree = {"LabelName": "/m/root", "Subcategory": [
        {"LabelName": classes[0], "Subcategory": [{"LabelName": classes[1]}, {"LabelName": classes[2]}]},
        {"LabelName": classes[3], "Subcategory": [{"LabelName": classes[2]}, {"LabelName": classes[4]}]},
        {"LabelName": classes[5]}]}
    fast = evaluate(boxes, labels, preds, classes=classes, hierarchy=tree)
    slow = evaluate_loop(boxes, labels, preds, classes=classes, hierarchy=tree)
    assert max(abs(fast[k] - slow[k]) for k in fast) <= 1e-12
    assert fast != evaluate(boxes, labels, preds, classes=classes)  # the expansion changed something


# ---------------------------------------------------------------- hand-made cases

def _case(gt, labels, dets, classes=("/m/a", "/m/b")):
    b = pd.DataFrame(gt, columns=["ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax", "IsGroupOf"])
    lab = pd.DataFrame(labels, columns=["ImageID", "LabelName", "Confidence"])
    d = pd.DataFrame(dets, columns=["ImageID", "LabelName", "Score", "XMin", "XMax", "YMin", "YMax"])
    return evaluate(b, lab, d, classes=list(classes))


BOX = (0.1, 0.5, 0.1, 0.5)
GROUP = (0.0, 1.0, 0.0, 1.0)


def test_group_of_collapses_to_one_true_positive_at_max_score():
    # a group box and a normal box of /m/a; three detections inside the group box (one of them on
    # the normal box), one false positive elsewhere at 0.65
    gt = [("i", "/m/a", *BOX, 0), ("i", "/m/a", 0.6, 0.9, 0.6, 0.9, 1)]
    dets = [("i", "/m/a", 0.9, *BOX), ("i", "/m/a", 0.7, 0.62, 0.8, 0.62, 0.8), ("i", "/m/a", 0.6, 0.7, 0.88, 0.7, 0.88),
            ("i", "/m/a", 0.65, 0.0, 0.05, 0.0, 0.05)]
    m = _case(gt, [], dets)
    # entries: 0.9 TP, 0.65 FP, group TP at 0.7 -> ranks 0.9 TP, 0.7 TP, 0.65 FP; 2 GT -> AP 1
    assert m[ap_key("/m/a")] == pytest.approx(1.0)
    assert math.isnan(m[ap_key("/m/b")]) and m[MAP] == pytest.approx(1.0)
    # the same with the false positive above the group's best: precision 2/3 at full recall
    dets[3] = ("i", "/m/a", 0.8, 0.0, 0.05, 0.0, 0.05)
    assert _case(gt, [], dets)[ap_key("/m/a")] == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_score_zero_in_group_gives_no_true_positive():
    gt = [("i", "/m/a", *BOX, 0), ("i", "/m/a", *GROUP, 1)]
    # the 0-score detection falls in the group box: it leaves the list, and the group box stays missed
    m = _case(gt, [], [("i", "/m/a", 0.9, *BOX), ("i", "/m/a", 0.0, 0.6, 0.9, 0.6, 0.9)])
    assert m[ap_key("/m/a")] == pytest.approx(0.5)


def test_no_fallback_to_the_second_best_box():
    # two GT boxes; both detections overlap the first one best (IoU >= 0.5 with both GT for the second)
    gt = [("i", "/m/a", 0.1, 0.5, 0.1, 0.5, 0), ("i", "/m/a", 0.15, 0.55, 0.1, 0.5, 0)]
    dets = [("i", "/m/a", 0.9, 0.1, 0.5, 0.1, 0.5), ("i", "/m/a", 0.8, 0.1, 0.51, 0.1, 0.5)]
    m = _case(gt, [], dets)
    assert m[ap_key("/m/a")] == pytest.approx(0.5)  # the second is a false positive although GT 2 is free


def test_negative_parent_label_makes_child_detections_false_positives():
    tree = {"LabelName": "/m/root", "Subcategory": [{"LabelName": "/m/a", "Subcategory": [{"LabelName": "/m/b"}]}]}
    b = pd.DataFrame([("i", "/m/b", *BOX, 0)], columns=["ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax", "IsGroupOf"])
    lab = pd.DataFrame([("j", "/m/a", 0)], columns=["ImageID", "LabelName", "Confidence"])
    d = pd.DataFrame([("i", "/m/b", 0.5, *BOX), ("j", "/m/b", 0.9, *BOX)],
                     columns=["ImageID", "LabelName", "Score", "XMin", "XMax", "YMin", "YMax"])
    m = evaluate(b, lab, d, hierarchy=tree)
    assert m[ap_key("/m/b")] == pytest.approx(0.5)   # j's /m/b is verified absent (parent negative)
    assert m[ap_key("/m/a")] == pytest.approx(0.0)   # the expanded /m/a box is never detected
    lab.loc[0, "LabelName"] = "/m/b"                 # without the hierarchy only /m/b is negative
    assert evaluate(b, lab, d)[ap_key("/m/b")] == pytest.approx(0.5)


def test_unverified_class_and_invalid_boxes_are_ignored():
    gt = [("i", "/m/a", *BOX, 0)]
    labels = [("i", "/m/b", 1)]
    dets = [("i", "/m/a", 0.5, *BOX), ("i", "/m/a", 0.9, 0.5, 0.1, 0.1, 0.5),   # inverted x: dropped
            ("k", "/m/a", 0.99, *BOX),                                            # image without GT: dropped
            ("i", "/m/b", 0.9, *BOX)]                                             # verified, no box: FP, no GT
    m = _case(gt, labels, dets, classes=("/m/a", "/m/b", "/m/c"))
    assert m[ap_key("/m/a")] == pytest.approx(1.0)
    assert math.isnan(m[ap_key("/m/b")]) and math.isnan(m[ap_key("/m/c")])


def test_class_with_ground_truth_but_no_detection_scores_zero():
    m = _case([("i", "/m/a", *BOX, 0), ("i", "/m/b", *BOX, 0)], [], [("i", "/m/a", 0.5, *BOX)])
    assert m[ap_key("/m/b")] == 0.0 and m[MAP] == pytest.approx(0.5)


def test_unknown_prediction_label_is_an_error():
    with pytest.raises(ValueError, match="/m/zzz"):
        _case([("i", "/m/a", *BOX, 0)], [], [("i", "/m/zzz", 0.5, *BOX)])
    assert np.isfinite(_case([("i", "/m/a", *BOX, 0)], [], [])[MAP])
