"""The on-disk layout: a hand-made tree with every defect of the real release, counted by
check_data.py; the dataset's crops and geometric targets (masked when a map is absent); the toy
generator's tree counted the same way."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from celeba_spoof import check_data
from celeba_spoof.data import SpoofDataset, load_split


def vec(stype=0, illum=0, env=0):
    return [0] * 40 + [stype, illum, env, int(stype != 0)]


def _img(path, w=112, h=96, color=(120, 90, 60)):
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.zeros((h, w, 3), np.uint8)
    a[:] = color
    a[: h // 2, : w // 2] = (250, 250, 250)  # a bright top-left quadrant, to see the crop
    Image.fromarray(a).save(path)


@pytest.fixture()
def tree(tmp_path):
    """Train: 8 listed (1 missing on disk, 1 with a bad vector), test: 2; 1 unlabeled image."""
    r = tmp_path / "CelebA_Spoof"
    d = r / "Data"
    train = {
        "Data/train/10/live/000001.jpg": (vec(), "0 0 112 112 0.99"),          # ok: the whole frame
        "Data/train/10/live/000002.jpg": (vec(), ""),                          # empty box file
        "Data/train/10/spoof/000003.jpg": (vec(1, 1, 1), "10 -5 200 170 .997"),  # negative (issue #31)
        "Data/train/10/spoof/000004.jpg": (vec(7, 2, 2), "10 10 -50 60 0.9"),   # negative width: degenerate
        "Data/train/11/spoof/000005.jpg": (vec(9, 4, 1), None),                 # no box file
        "Data/train/11/spoof/000006.jpg": (vec(2, 3, 2), "1 2 3"),              # malformed
        "Data/train/11/live/000007.jpg": (vec(), "0 0 112 112 0.9"),            # listed, not on disk
    }
    for rel, (_, box) in train.items():
        if rel.endswith("000007.jpg"):
            continue
        _img(r / rel)
        if box is not None:
            (r / rel).with_name((r / rel).stem + "_BB.txt").write_text(box)
    labels = {k: v for k, (v, _) in train.items()}
    labels["Data/train/11/spoof/000008.jpg"] = vec(3, 1, 1)[:43]  # bad vector (43 values)
    _img(d / "train/11/spoof/000008.jpg")
    _img(d / "train/12/live/000009.jpg")  # on disk, in no list
    # maps for the live 000001 (depth) and the spoof 000003 (reflection)
    Image.fromarray(np.full((96, 112), 200, np.uint8)).save(d / "train/10/live/000001_depth.png")
    Image.fromarray(np.full((96, 112, 3), 100, np.uint8)).save(d / "train/10/spoof/000003_reflect.png")
    test = {"Data/test/20/live/000010.jpg": vec(), "Data/test/20/spoof/000011.jpg": vec(8, 1, 1)}
    for rel in test:
        _img(r / rel)
        (r / rel).with_name((r / rel).stem + "_BB.txt").write_text("112 0 112 224 0.9")
    (r / "metas" / "intra_test").mkdir(parents=True)
    (r / "metas" / "intra_test" / "train_label.json").write_text(json.dumps(labels))
    (r / "metas" / "intra_test" / "test_label.json").write_text(json.dumps(test))
    return r


def _check(root, *extra):
    rep, err = check_data.check(check_data.get_args_parser().parse_args(["--data-root", str(root), *extra]))
    return rep, err


def test_check_data_counts_every_defect(tree, capsys):
    rep, err = _check(tree)
    assert err is None
    expect = {"images": 10, "labelled": 9, "live": 3, "spoof": 5, "missing_image": 1, "bad_label": 1,
              "empty_bbox": 1, "malformed_bbox": 1, "negative_bbox": 2, "degenerate_bbox": 1,
              "missing_bbox_file": 1, "unlabeled": 1, "depth_maps": 1, "reflect_maps": 1, "unreadable_image": 0}
    assert {k: rep[k] for k in expect} == expect
    assert rep["per_spoof_type"] == {"Live": 3, "Photo": 1, "Poster": 1, "PC": 1, "Pad": 1, "Phone": 1}
    assert rep["per_illumination"] == {"Live": 3, "Normal": 2, "Strong": 1, "Back": 1, "Dark": 1}
    assert rep["examples"]["missing_image"] == ["Data/train/11/live/000007.jpg"]
    assert rep["examples"]["unlabeled"] == ["Data/train/12/live/000009.jpg"]
    assert rep["examples"]["degenerate_bbox"] == ["Data/train/10/spoof/000004.jpg"]
    assert rep["splits"]["test"]["images"] == 2
    assert check_data.main(["--data-root", str(tree), "--fast"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["usable"] and printed["empty_bbox"] == 1 and "degenerate_bbox" not in printed


def test_check_data_fails_on_unusable_layouts(tree, tmp_path, capsys):
    assert check_data.main(["--data-root", str(tmp_path / "nope")]) == 2
    assert "no such folder" in json.loads(capsys.readouterr().out)["error"]
    (tree / "metas" / "intra_test" / "test_label.json").write_text("{oops")
    assert check_data.main(["--data-root", str(tree)]) == 2
    assert "not valid JSON" in json.loads(capsys.readouterr().out)["error"]
    (tree / "metas" / "intra_test" / "test_label.json").write_text(json.dumps({"Data/test/20/live/000010.jpg": vec()}))
    assert check_data.main(["--data-root", str(tree)]) == 2
    assert "needs live and spoof" in json.loads(capsys.readouterr().out)["error"]
    assert check_data.main(["--data-root", str(tree), "--protocol", "protocol1"]) == 2
    assert "no train label list" in json.loads(capsys.readouterr().out)["error"]


def test_dataset_crops_and_masks_geometric_targets(tree):
    split = load_split(tree, "intra_test", "train")
    samples = {s.rel.split("/")[-1]: i for i, s in enumerate(split["train"])}
    ds = SpoofDataset(split["train"], input_size=32, train=False, geo_size=4)
    live = ds[samples["000001.jpg"]]
    assert live["image"].shape == (3, 32, 32) and live["live"] == 0
    torch.testing.assert_close(live["depth"], torch.full((1, 4, 4), 200 / 255))
    assert live["depth_mask"] == 1 and live["reflect_mask"] == 1 and live["reflect"].abs().sum() == 0
    no_map = ds[samples["000002.jpg"]]  # live, no depth map: depth masked, reflection = the paper's 0
    assert no_map["depth_mask"] == 0 and no_map["reflect_mask"] == 1
    spoof = ds[samples["000003.jpg"]]
    assert spoof["reflect_mask"] == 1 and spoof["depth_mask"] == 1 and spoof["depth"].abs().sum() == 0
    torch.testing.assert_close(spoof["reflect"], torch.full((3, 4, 4), 100 / 255))
    bare = ds[samples["000005.jpg"]]  # spoof without a reflection map
    assert bare["reflect_mask"] == 0 and bare["depth_mask"] == 1
    strict = SpoofDataset(split["train"], input_size=32, geo_size=4, geo_known_zeros=False)
    assert strict[samples["000002.jpg"]]["reflect_mask"] == 0 and strict[samples["000005.jpg"]]["depth_mask"] == 0
    assert strict[samples["000001.jpg"]]["depth_mask"] == 1
    # the test images' box is the right half (x 112..224 of the 224 frame): no bright quadrant
    test = load_split(tree, "intra_test", "test")["test"]
    crop = SpoofDataset(test, input_size=16)[0]["image"]
    assert crop.max() < 0.6
    whole = SpoofDataset(test, input_size=16, negative_bbox="whole")[0]["image"]  # no negative values: same
    torch.testing.assert_close(crop, whole)


def test_validation_split_holds_out_whole_subjects(tree):
    split = load_split(tree, "intra_test", "train", val_fraction=0.5, val_seed=0)
    tr = {s.rel.split("/")[2] for s in split["train"]}
    va = {s.rel.split("/")[2] for s in split["val"]}
    assert tr and va and not tr & va and len(split["train"]) + len(split["val"]) == 6


def test_toy_tree_is_counted_as_its_manifest_says(tmp_path):
    from celeba_spoof.toy import make_toy_dataset
    root = make_toy_dataset(tmp_path / "toy", seed=3, train_subjects=6, test_subjects=3,
                            live_per_subject=2, spoof_per_subject=4)
    man = json.loads((root / "manifest.json").read_text())
    c = man["counts"]
    rep, err = _check(root)
    assert err is None
    assert rep["images"] == c["jpg_files"] == 54
    assert rep["unlabeled"] == c["unlabeled"] == 2 and rep["missing_image"] == c["missing_image"] == 2
    assert rep["empty_bbox"] == c["empty"] and rep["malformed_bbox"] == c["malformed"]
    assert rep["negative_bbox"] == c["negative"] + c["negative_size"]
    assert rep["missing_bbox_file"] == c["missing_bbox"]
    assert rep["depth_maps"] == c["depth_maps"] and rep["reflect_maps"] == c["reflect_maps"]
    assert rep["labelled"] == sum(man["labelled"].values())
    mtime = (root / "manifest.json").stat().st_mtime_ns
    make_toy_dataset(tmp_path / "toy", seed=3, train_subjects=6, test_subjects=3, live_per_subject=2, spoof_per_subject=4)
    assert (root / "manifest.json").stat().st_mtime_ns == mtime  # idempotent
    for proto in ("protocol1", "protocol2/test_on_screen"):
        assert _check(root, "--protocol", proto, "--fast")[1] is None
