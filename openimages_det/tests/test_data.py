"""Open Images files: multi-label objects, concurrent rates, class statistics, malformed inputs, the toy."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from openimages_det import check_data
from openimages_det.annotations import AnnotationError, read_boxes, read_class_descriptions, read_image_labels
from openimages_det.data import (
    DataError,
    OpenImagesTrain,
    build_records,
    check_images,
    class_statistics,
    concurrent_rates,
)
from openimages_det.hierarchy import load_hierarchy
from openimages_det.toy import HIERARCHY, make_toy_dataset

COLS = ["ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax", "IsGroupOf"]
CLASSES = ["/m/a", "/m/b", "/m/c", "/m/p"]            # /m/p is the parent of /m/a and /m/b
TREE = {"LabelName": "/m/root", "Subcategory": [
    {"LabelName": "/m/p", "Subcategory": [{"LabelName": "/m/a"}, {"LabelName": "/m/b"}]}, {"LabelName": "/m/c"}]}


def _boxes():
    return pd.DataFrame([
        ("i1", "/m/a", 0.1, 0.5, 0.1, 0.5, 0),
        ("i1", "/m/c", 0.1, 0.5, 0.1, 0.505, 0),        # IoU 0.99 with the first: the same object
        ("i1", "/m/b", 0.6, 0.9, 0.6, 0.9, 1),
        ("i2", "/m/a", 0.2, 0.4, 0.2, 0.4, 0),
        ("i2", "/m/a", 0.5, 0.5, 0.1, 0.3, 0),          # zero width: skipped
        ("i2", "/m/b", 0.2, 0.4, 0.2, 0.4, 0),          # the same box as /m/a: one object
        ("i0", "/m/c", 0.0, 1.0, 0.0, 1.0, 0),
    ], columns=COLS)


def test_multi_label_objects_and_rates_by_hand():
    rec = build_records(_boxes(), CLASSES, concurrent_iou=0.95)
    assert rec.skipped_boxes == 1
    assert list(rec.image_ids) == ["i0", "i1", "i2"]
    sets = [sorted(s.tolist()) for i in range(3) for s in rec.objects(i)[3]]
    assert sets == [[3], [1, 3], [2], [1, 2]]          # class indices: a=1, b=2, c=3, p=4
    assert rec.objects(1)[1].tolist() == [False, True]  # group-of flag follows the object
    r = concurrent_rates(rec)
    # objects labelled a: 2 (one with c, one with b); labelled c: 2 (one with a)
    assert r[1, 3] == 0.5 and r[1, 2] == 0.5 and r[3, 1] == 0.5 and r[2, 1] == 0.5 and r[1, 1] == 1
    assert r[0].sum() == 0 and r[:, 0].sum() == 0
    assert concurrent_rates(build_records(_boxes(), CLASSES, concurrent_iou=1.01))[1, 3] == 0  # grouping off


def test_expanded_labels_and_statistics():
    h = load_hierarchy(TREE)
    rec = build_records(_boxes(), CLASSES, h, expand=True)
    sets = [sorted(s.tolist()) for i in range(3) for s in rec.objects(i)[3]]
    assert sets == [[3], [1, 3, 4], [2, 4], [1, 2, 4]]  # the parent p joins a's and b's sets
    stats = class_statistics(rec, CLASSES, h)
    assert stats["image_count"] == [2, 2, 2, 2]         # p counted in i1 and i2 through its children
    assert stats["object_count"] == [2, 2, 2, 0]        # annotated objects, never expanded
    assert stats["multilabel_rate"] == [1.0, 0.5, 0.5, 0.0]


def test_training_dataset_targets(tmp_path):
    from PIL import Image
    for i in ("i0", "i1", "i2"):
        Image.new("RGB", (40, 20), (100, 100, 100)).save(tmp_path / f"{i}.jpg")
    rec = build_records(_boxes(), CLASSES)
    ds = OpenImagesTrain(rec, tmp_path)
    img, t = ds[(1, False)]
    assert img.shape == (3, 20, 40)
    assert torch.allclose(t["boxes"][0], torch.tensor([4.0, 2.0, 20.0, 10.0]))
    assert t["labels"].tolist() == [1, 2] and t["label_sets"][0].nonzero().ravel().tolist() == [1, 3]
    _, tf = ds[(1, True)]
    assert torch.allclose(tf["boxes"][0], torch.tensor([20.0, 2.0, 36.0, 10.0]))
    (tmp_path / "i2.jpg").write_bytes(b"not a jpeg")
    _, t2 = ds[(2, False)]                              # unreadable: the next image instead
    assert int(t2["image_index"]) == 0
    (tmp_path / "i0.jpg").unlink()
    with pytest.raises(DataError, match="1 of 3"):
        check_images(tmp_path, rec.image_ids, "training")


def _write(path, text):
    path.write_text(text)
    return path


def test_malformed_files_name_the_line(tmp_path):
    head = "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsGroupOf\n"
    ok = "i,x,/m/a,1,0.1,0.5,0.1,0.5,0\n"
    with pytest.raises(AnnotationError, match=r"line 3: unknown LabelName '/m/zz'"):
        read_boxes(_write(tmp_path / "b.csv", head + ok + "i,x,/m/zz,1,0.1,0.5,0.1,0.5,0\n"), classes=CLASSES)
    with pytest.raises(AnnotationError, match=r"line 2: YMax = 1.5 is outside \[0, 1\]"):
        read_boxes(_write(tmp_path / "b.csv", head + "i,x,/m/a,1,0.1,0.5,0.1,1.5,0\n"))
    with pytest.raises(AnnotationError, match=r"line 2: XMin = 'abc' is not a number"):
        read_boxes(_write(tmp_path / "b.csv", head + "i,x,/m/a,1,abc,0.5,0.1,0.5,0\n"))
    with pytest.raises(AnnotationError, match=r"missing column\(s\) \['IsGroupOf'\]"):
        read_boxes(_write(tmp_path / "b.csv", head.replace(",IsGroupOf", "") + "i,x,/m/a,1,0.1,0.5,0.1,0.5\n"))
    with pytest.raises(AnnotationError, match="line 2: Confidence = 2.0"):
        read_image_labels(_write(tmp_path / "l.csv", "ImageID,Source,LabelName,Confidence\ni,x,/m/a,2\n"))
    with pytest.raises(AnnotationError, match="not found"):
        read_boxes(tmp_path / "nope.csv")
    assert read_class_descriptions(_write(tmp_path / "c.csv", "LabelName,DisplayName\n/m/a,A\n")) == [("/m/a", "A")]
    assert read_class_descriptions(_write(tmp_path / "c.csv", "/m/a,A\n/m/b,B b\n")) == [("/m/a", "A"), ("/m/b", "B b")]


def test_toy_dataset_in_v6_format_and_check_data(tmp_path, capsys):
    root = make_toy_dataset(tmp_path / "toy", seed=1, train_images=40, val_images=12, test_images=4)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["counts"]["train"]["images"] == 40
    assert json.loads((root / "bbox_labels_600_hierarchy.json").read_text()) == HIERARCHY
    header = (root / "train-annotations-bbox.csv").read_text().splitlines()[0]
    assert header.startswith("ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax") and "IsGroupOf" in header
    assert check_data.main(["--data-root", str(root), "--release", "v6", "--splits", "train", "validation",
                            "test"]) == 0
    report = json.loads(capsys.readouterr().out)
    tr = report["splits"]["train"]
    assert tr["images_checked"] == 40 and tr["multi_label_objects"] > 0 and tr["group_of_boxes"] > 0
    assert report["splits"]["validation"]["labels_negative"] > 0
    assert report["hierarchy"]["depth"] == 3 and report["hierarchy"]["labels_with_several_parents"] == 2
    # deterministic: the same seed writes the same files
    again = make_toy_dataset(tmp_path / "toy2", seed=1, train_images=40, val_images=12, test_images=4)
    assert (again / "train-annotations-bbox.csv").read_text() == (root / "train-annotations-bbox.csv").read_text()
    (root / "validation" / sorted(p.name for p in (root / "validation").iterdir())[0]).unlink()
    assert check_data.main(["--data-root", str(root), "--release", "v6"]) == 1


def test_statistics_ignore_unused_classes():
    rec = build_records(_boxes().iloc[:1], CLASSES)
    stats = class_statistics(rec, CLASSES, load_hierarchy(TREE))
    assert np.array(stats["image_count"]).tolist() == [1, 0, 0, 1]
