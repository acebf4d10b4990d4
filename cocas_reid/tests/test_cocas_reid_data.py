"""The readers: Market-1501 names, junk and distractors; COCAS+ lists and their errors;
check_data.py's report and dump; clothes boxes from parsing; the toy generator's layout."""
import json

import numpy as np
import pytest
from PIL import Image

from cocas_reid import check_data, clothes
from cocas_reid.data import DataError, image_path, load_dataset
from cocas_reid.dataset import ReidImages, clothes_transform, person_transform


def _jpg(path, color=(120, 60, 30), size=(32, 64)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


@pytest.fixture
def market(tmp_path):
    root = tmp_path / "Market-1501"
    for name in ["0002_c1s1_000451_03.jpg", "0002_c2s1_000301_01.jpg", "0007_c3s1_000551_02.jpg"]:
        _jpg(root / "bounding_box_train" / name)
    for name in ["0002_c1s1_000901_01.jpg", "0007_c6s2_000001_01.jpg", "-1_c1s1_000401_03.jpg",
                 "0000_c1s1_000101_04.jpg", "0000_c2s1_000101_04.jpg"]:
        _jpg(root / "bounding_box_test" / name)
    for name in ["0002_c2s1_000101_00.jpg", "0007_c4s1_000101_00.jpg"]:
        _jpg(root / "query" / name)
    (root / "bounding_box_test" / "Thumbs.db").write_bytes(b"x")
    (root / "query" / "readme.txt").write_text("x")
    return root


def test_market_layout(market):
    d = load_dataset("market1501", market)
    tr, q, g = d.splits["train"], d.splits["query"], d.splits["gallery"]
    assert tr.files[0] == "bounding_box_train/0002_c1s1_000451_03.jpg"
    assert tr.pids.tolist() == [2, 2, 7] and tr.labels.tolist() == [0, 0, 1] and tr.camids.tolist() == [0, 1, 2]
    assert sorted(g.pids.tolist()) == [0, 0, 2, 7]  # junk dropped, distractors kept
    assert q.camids.tolist() == [1, 3]
    assert d.report["junk_skipped"] == 1 and d.report["distractors"] == 2 and d.report["ignored_files"] == 2
    assert d.num_classes == 2


@pytest.mark.parametrize("name,error", [("2_c1s1_x.jpg", "not a Market-1501 name"), ("0002_c0s1_000451_03.jpg", "c0")])
def test_market_bad_names(market, name, error):
    _jpg(market / "query" / name)
    with pytest.raises(DataError, match=error) as e:
        load_dataset("market1501", market)
    assert name in str(e.value)


def test_check_data_report_and_dump(market, tmp_path, capsys):
    dump = tmp_path / "items.json"
    rep = check_data.main(check_data.get_args_parser().parse_args(
        ["--dataset", "market1501", "--data-root", str(market), "--dump", str(dump)]))
    printed = json.loads(capsys.readouterr().out)
    assert printed == rep
    want = {"train_images": 3, "train_ids": 2, "query_images": 2, "query_ids": 2, "gallery_images": 4,
            "gallery_ids": 2, "distractors": 2, "junk_skipped": 1, "cameras": 5, "missing_templates": 0}
    assert {k: rep[k] for k in want} == want
    items = json.loads(dump.read_text())
    assert len(items) == 9 and items[0] == {"split": "train", "file": "bounding_box_train/0002_c1s1_000451_03.jpg",
                                           "pid": 2, "camid": 0}


@pytest.fixture
def cocas(tmp_path):
    root = tmp_path / "cocas"
    for f in ["images/a/1.jpg", "images/a/2.jpg", "images/b/3.jpg", "images/b/4.jpg", "images_desensitized/a/1.jpg"]:
        _jpg(root / f)
    for f in ["templates/a1.jpg", "templates/b1.jpg"]:
        _jpg(root / f, size=(32, 32))
    (root / "train.txt").write_text("# image template pid clothes cam\nimages/a/1.jpg templates/a1.jpg 11 1 1\n\n"
                                    "images/b/3.jpg,templates/b1.jpg,25,1\n")
    (root / "query.txt").write_text("images/a/2.jpg templates/a1.jpg 11 2 2\n")
    (root / "gallery.txt").write_text("images/b/4.jpg 25 1 3\n")
    return root


def test_cocas_lists(cocas, monkeypatch):
    monkeypatch.chdir(cocas.parent)  # a relative root, and a --train-list relative to it
    (cocas / "other.txt").write_text("images/b/3.jpg templates/b1.jpg 25 1 2\n")
    assert load_dataset("cocas", "cocas", train_list="other.txt").splits["train"].pids.tolist() == [25]
    d = load_dataset("cocas", cocas)
    tr = d.splits["train"]
    assert tr.files == ["images/a/1.jpg", "images/b/3.jpg"] and tr.templates == ["templates/a1.jpg", "templates/b1.jpg"]
    assert tr.labels.tolist() == [0, 1] and tr.camids.tolist() == [0, -1]  # camera optional in train.txt
    assert d.splits["query"].camids.tolist() == [1] and d.splits["gallery"].templates is None
    assert image_path(cocas, "images/a/1.jpg", "desensitized") == cocas / "images_desensitized/a/1.jpg"
    ds = ReidImages(cocas, d.splits["query"], person_transform(16, 8, False), clothes_transform(8, False), "template")
    item = ds[0]
    assert item["image"].shape == (3, 16, 8) and item["clothes"].shape == (3, 8, 8) and item["label"] == 11
    g = ReidImages(cocas, d.splits["gallery"], person_transform(16, 8, True), clothes_transform(8, True), "box",
                   boxes=[[2, 10, 30, 50]])[0]
    assert g["clothes"].shape == (3, 8, 8) and g["camid"] == 2


@pytest.mark.parametrize("list_name,line,error", [
    ("query.txt", "images/a/2.jpg 11 2 2", "4 fields, expected 5"),
    ("gallery.txt", "images/b/4.jpg 25 x 3", "clothes_id 'x' is not an integer"),
    ("gallery.txt", "images/b/9.jpg 25 1 3", "images/b/9.jpg not found"),
    ("query.txt", "images/a/2.jpg templates/zz.jpg 11 2 2", "template .*zz.jpg not found"),
    ("gallery.txt", "images/b/4.jpg 25 1 0", "camera_id 0: camera ids are 1-based"),
])
def test_cocas_list_errors_name_file_and_line(cocas, list_name, line, error):
    (cocas / list_name).write_text(f"# header\n{line}\n")
    with pytest.raises(DataError, match=error) as e:
        load_dataset("cocas", cocas)
    assert f"{list_name}:2" in str(e.value)


def test_desensitized_variant_needs_its_images(cocas):
    with pytest.raises(DataError, match="train.txt:4: image .*images_desensitized/b/3.jpg not found"):
        load_dataset("cocas", cocas, variant="desensitized")


def test_check_data_counts_missing_templates(cocas, capsys):
    (cocas / "query.txt").write_text("images/a/2.jpg templates/zz.jpg 11 2 2\n")
    with pytest.raises(SystemExit) as e:
        check_data.main(check_data.get_args_parser().parse_args(["--data-root", str(cocas)]))
    assert e.value.code == 1
    rep = json.loads(capsys.readouterr().out)
    assert rep["missing_templates"] == 1 and "query.txt:1" in rep["missing_template_examples"][0]


def test_parsing_and_fixed_boxes(cocas):
    lab = np.zeros((64, 32), np.uint8)
    lab[20:40, 5:25] = 5   # upper clothes
    lab[40:60, 8:22] = 9   # pants
    lab[2:12, 10:20] = 13  # face: not clothes
    p = clothes.parsing_path(cocas, "images/b/4.jpg")
    assert p == cocas / "parsing/b/4.png"
    p.parent.mkdir(parents=True)
    Image.fromarray(lab, mode="L").save(p)
    assert clothes.parsing_boxes(cocas, ["images/b/4.jpg"]) == {"images/b/4.jpg": [5.0, 20.0, 25.0, 60.0]}
    with pytest.raises(DataError, match="parsing map of images/a/1.jpg not found"):
        clothes.parsing_boxes(cocas, ["images/a/1.jpg"])
    assert clothes.fixed_boxes(cocas, ["images/b/4.jpg"], frac=(0, 0.25, 1, 0.5)) == {"images/b/4.jpg": [0, 16.0, 32, 32.0]}
    f = clothes.write_box_file(cocas / "b.json", {"images/b/4.jpg": [1, 2, 3, 4]}, "file")
    assert clothes.boxes_for(["images/b/4.jpg"], "detector", cocas, box_file=f).tolist() == [[1, 2, 3, 4]]
    with pytest.raises(DataError, match="no box for 1 of 1 images"):
        clothes.boxes_for(["images/a/1.jpg"], "detector", cocas, box_file=f)
    (cocas / "bad.json").write_text('{"boxes": {"x": [3, 2, 1, 4]}}')
    with pytest.raises(DataError, match="x2 > x1"):
        clothes.read_box_file(cocas / "bad.json")


def test_toy_layout_is_read_by_the_real_loader(tmp_path):
    from cocas_reid.toy import make_toy_dataset

    root = make_toy_dataset(tmp_path / "toy", train_ids=6, test_ids=4, query_only_ids=1, images_per_outfit=2)
    d = load_dataset("cocas", root, variant="desensitized")
    q, g = d.splits["query"], d.splits["gallery"]
    assert d.num_classes == 6 and g.num_ids == 4 and q.num_ids == 5  # one query identity has no gallery image
    assert set(g.pids) < set(q.pids) and not set(g.pids) & set(d.splits["train"].pids)
    # a query carries the template of its identity's gallery outfit, never its own outfit's
    gallery_outfit = dict(zip(g.pids.tolist(), g.clothes.tolist()))
    for pid, cid, tmpl in zip(q.pids, q.clothes, q.templates):
        if pid in gallery_outfit:
            assert cid != gallery_outfit[pid] and tmpl == f"templates/{pid:04d}_{gallery_outfit[pid]}.jpg"
    assert clothes.parsing_boxes(root, g.files)  # every gallery image has a parsing map with clothes
    assert make_toy_dataset(tmp_path / "toy", train_ids=6, test_ids=4, query_only_ids=1, images_per_outfit=2) == root
