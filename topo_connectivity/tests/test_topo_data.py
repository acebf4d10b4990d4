"""Bad input: ImageFolder layout errors before any work, hidden / non-image files, colour modes,
undecodable images; COCO: missing images, degenerate boxes, malformed JSON."""
import json
import logging

import numpy as np
import pytest
from PIL import Image

from topo_connectivity.data import DataError, ImageFolderDataset, check_splits, collate_skip, scan_split, val_transform
from topo_connectivity.det_data import CocoSplit, load_coco


def _img(path, mode="RGB", size=(12, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    a = (np.random.default_rng(len(str(path))).random((size[1], size[0], 4)) * 255).astype(np.uint8)
    im = Image.fromarray(a, "RGBA").convert(mode)
    im.save(path, "PNG" if mode in ("RGBA", "P", "LA") else "JPEG" if mode in ("RGB", "L", "CMYK") else "PNG")


def _tree(root, classes=("n01", "n02"), per_class=2, splits=("train", "val")):
    for split in splits:
        for c in classes:
            for i in range(per_class):
                _img(root / split / c / f"{c}_{i}.JPEG")
    return root


def test_layout_errors_name_the_folder(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path / "train")):
        check_splits(tmp_path)
    _tree(tmp_path, splits=("train",))
    with pytest.raises(DataError, match=str(tmp_path / "val")):
        check_splits(tmp_path)  # missing split
    _tree(tmp_path, classes=("n01",), splits=("val",))
    with pytest.raises(DataError, match=r"val: class folders differ.*missing \['n02'\]"):
        check_splits(tmp_path)  # class mismatch
    (tmp_path / "val" / "n02").mkdir()
    (tmp_path / "val" / "n02" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=r"val/n02: class folder without images"):
        check_splits(tmp_path)  # empty class folder (a text file is not an image)


def test_hidden_and_non_image_entries_are_ignored(tmp_path):
    _tree(tmp_path)
    (tmp_path / "train" / ".ipynb_checkpoints").mkdir()
    _img(tmp_path / "train" / ".ipynb_checkpoints" / "x.JPEG")
    _img(tmp_path / "train" / "n01" / ".hidden.JPEG")
    _img(tmp_path / "train" / "n01" / ".cache" / "y.JPEG")
    (tmp_path / "train" / "n01" / "labels.csv").write_text("a,b")
    (tmp_path / "train" / ".DS_Store").write_text("")
    classes, paths, targets = check_splits(tmp_path)["train"]
    assert classes == ["n01", "n02"]
    assert sorted(p.decode() for p in paths) == ["n01/n01_0.JPEG", "n01/n01_1.JPEG", "n02/n02_0.JPEG", "n02/n02_1.JPEG"]
    assert targets.tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA", "P", "LA"])
def test_colour_modes_become_rgb(tmp_path, mode):
    _img(tmp_path / "val" / "n01" / "a.img", mode)
    (tmp_path / "val" / "n01" / "a.img").rename(tmp_path / "val" / "n01" / ("a.png" if mode in ("RGBA", "P", "LA") else "a.jpg"))
    ds = ImageFolderDataset(tmp_path / "val", scan_split(tmp_path / "val"), val_transform(8, 8))
    img, target, skipped = ds[0]
    assert img.shape == (3, 8, 8) and target == 0 and skipped == 0


def test_undecodable_images_are_skipped_with_a_warning(tmp_path, caplog):
    _tree(tmp_path, classes=("n01",), per_class=3, splits=("val",))
    bad = tmp_path / "val" / "n01" / "n01_1.JPEG"
    bad.write_bytes(b"\xff\xd8 this is not a JPEG")
    scanned = scan_split(tmp_path / "val")
    with caplog.at_level(logging.WARNING, logger="topo_connectivity"):
        ev = ImageFolderDataset(tmp_path / "val", scanned, val_transform(8, 8))
        images, targets, skipped = collate_skip([ev[i] for i in range(3)])
        assert images.shape[0] == 2 and skipped == 1  # evaluation: dropped, counted
        tr = ImageFolderDataset(tmp_path / "val", scanned, val_transform(8, 8), substitute=True)
        images, targets, skipped = collate_skip([tr[i] for i in range(3)])
        assert images.shape[0] == 3 and skipped == 1  # training: replaced by the next image, counted
    assert str(bad) in caplog.text and "undecodable" in caplog.text


def _coco(root, n=4):
    (root / "annotations").mkdir(parents=True)
    (root / "val2017").mkdir()
    images, anns = [], []
    for i in range(1, n + 1):
        Image.new("RGB", (40, 30), (i * 20, 0, 0)).save(root / "val2017" / f"{i:012d}.jpg")
        images.append({"id": i, "file_name": f"{i:012d}.jpg", "width": 40, "height": 30})
        anns.append({"id": i, "image_id": i, "category_id": 3, "bbox": [2, 3, 10, 8], "area": 80, "iscrowd": 0})
    anns.append({"id": 99, "image_id": 1, "category_id": 3, "bbox": [5, 5, 0, 4], "area": 0, "iscrowd": 0})
    anns.append({"id": 98, "image_id": 2, "category_id": 7, "bbox": [5, 5, 4, -1], "area": 0, "iscrowd": 0})
    anns.append({"id": 97, "image_id": 3, "category_id": 7, "bbox": [1, 1, 20, 20], "area": 400, "iscrowd": 1})
    data = {"images": images, "annotations": anns, "categories": [{"id": 3, "name": "a"}, {"id": 7, "name": "b"}]}
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(data))
    return root


def test_coco_missing_images_and_degenerate_boxes_are_skipped_and_counted(tmp_path, caplog):
    root = _coco(tmp_path)
    (root / "val2017" / f"{2:012d}.jpg").unlink()
    with caplog.at_level(logging.WARNING, logger="topo_connectivity"):
        split = CocoSplit(root, "val2017")
    assert split.skipped_images == 1 and str(root / "val2017" / f"{2:012d}.jpg") in caplog.text
    assert split.dropped_boxes == 1  # the w = 0 box of image 1 (image 2's h < 0 box left with its image)
    assert split.ids.tolist() == [1, 3, 4]
    t = split.target(0)
    assert t["boxes"].tolist() == [[2.0, 3.0, 12.0, 11.0]] and t["labels"].tolist() == [1]
    assert split.target(1)["labels"].tolist() == [1]  # the crowd box is no training target ...
    assert {a["id"] for a in split.gt["annotations"]} == {1, 3, 4, 97}  # ... but stays in the scoring GT
    assert split.category_id(np.array([1, 2])).tolist() == [3, 7]
    assert load_coco(root, "val2017", subset=2).split.ids.tolist() == [1]  # first N ids, then files checked


def test_coco_malformed_json_names_the_file(tmp_path):
    root = _coco(tmp_path)
    path = root / "annotations" / "instances_val2017.json"
    path.write_text('{"images": [')
    with pytest.raises(DataError, match=f"{path}: malformed JSON"):
        CocoSplit(root, "val2017")
    path.write_text(json.dumps({"images": [], "categories": []}))
    with pytest.raises(DataError, match="'annotations'"):
        CocoSplit(root, "val2017")
    with pytest.raises(DataError, match="instances_train2017.json: annotation file not found"):
        CocoSplit(root, "train2017")
