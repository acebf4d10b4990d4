"""Readers of the real layouts (Cityscapes on the toy tree, VOC + SBD, COCO-Stuff 10k / 164k): id
mappings, pairing by stem, errors that name the file, deterministic augmentation."""
import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from cdgcnet import labels as L
from cdgcnet.augment import SegDataset
from cdgcnet.data import VOC, Cityscapes, COCOStuff
from cdgcnet.toy import make_toy_dataset


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_dataset(tmp_path_factory.mktemp("cdgc") / "toy", train_images=4, val_images=2, test_images=1)


def test_every_labelid_is_mapped_as_cityscapesscripts():
    evaluated = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
                 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
    for lid in range(34):
        assert L.LABEL_TO_TRAIN[lid] == evaluated.get(lid, 255), lid
    for lid, tid in evaluated.items():
        assert L.TRAIN_TO_LABEL[tid] == lid
    assert L.TRAIN_TO_LABEL[255] == 0


def test_cityscapes_pairs_by_stem_and_names_unknown_ids(toy, tmp_path):
    src = Cityscapes(toy)
    recs = src.records("train")
    assert [r.name for r in recs][:2] == ["aachen_000000_000019", "aachen_000001_000022"]
    cities = {r.name.rsplit("_", 2)[0] for r in recs}
    assert cities == {"aachen", "bad-honnef", "new_york"}
    for r in recs:
        assert r.label.endswith(f"/{r.name}_gtFine_labelIds.png") and r.image.endswith(f"/{r.name}_leftImg8bit.png")
    assert all(r.label is None for r in src.records("test"))
    assert len(src.records("train+val")) == 6
    # labelTrainIds files give the same train ids
    tr = Cityscapes(toy, "trainIds")
    for a, b in zip(recs, tr.records("train")):
        assert np.array_equal(src.read_label(a.label), tr.read_label(b.label))
    bad = tmp_path / "x_gtFine_labelIds.png"
    Image.fromarray(np.array([[7, 34], [40, 0]], np.uint8)).save(bad)
    with pytest.raises(ValueError, match=r"x_gtFine_labelIds.png: values \[34, 40\] are not Cityscapes labelIds"):
        src.read_label(bad)
    with pytest.raises(ValueError, match="trainIds"):
        src.from_native(np.array([[19]], np.uint8), "p.png", "trainIds")


def test_cityscapes_errors_name_the_file(toy, tmp_path):
    import shutil
    root = tmp_path / "cs"
    shutil.copytree(toy, root)
    rec = Cityscapes(root).records("val")[0]
    with pytest.raises(FileNotFoundError, match="leftImg8bit/test"):
        Cityscapes(tmp_path).records("test")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(rec.label)
    ds = SegDataset(Cityscapes(root), Cityscapes(root).records("val"), train=False)
    with pytest.raises(ValueError, match=f"{rec.label}: label size"):
        ds[0]
    (root / rec.label).unlink()
    with pytest.raises(FileNotFoundError, match=f"its label {rec.label} is missing"):
        Cityscapes(root).records("val")


def test_augmentation_is_a_function_of_seed_epoch_and_index(toy):
    src = Cityscapes(toy)
    ds = SegDataset(src, src.records("train"), True, crop=(96, 160), scale_range=(0.5, 2.0), seed=3)
    x1, y1, _ = ds[(1, 0)]
    x2, y2, _ = ds[(1, 0)]
    x3, _, _ = ds[(1, 1)]
    assert x1.shape == (3, 96, 160) and y1.shape == (96, 160) and y1.dtype == torch.int64
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and not torch.equal(x1, x3)
    small = SegDataset(src, src.records("train"), True, crop=(200, 300), scale_range=(0.5, 0.5))
    x, y, _ = small[(0, 0)]
    assert x.shape == (3, 200, 300) and (y[64:] == 255).all() and (x[:, 64:] == 0).all()  # padded
    ev = SegDataset(src, src.records("val"), False)
    x, y, i = ev[0]
    assert x.shape == (3, 128, 256) and y.shape == (128, 256) and i == 0


def _jpg(path, h=6, w=8):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(path)


def test_voc_with_sbd_builds_the_aug_split(tmp_path):
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    sbd = tmp_path / "benchmark_RELEASE" / "dataset"
    for i in ("a", "b"):
        _jpg(voc / "JPEGImages" / f"{i}.jpg")
    _jpg(sbd / "img" / "c.jpg")
    lab = np.full((6, 8), 3, np.uint8)
    lab[0] = 255
    (voc / "SegmentationClass").mkdir(parents=True)
    for i in ("a", "b"):
        Image.fromarray(lab).save(voc / "SegmentationClass" / f"{i}.png")
    (sbd / "cls").mkdir(parents=True)
    savemat(sbd / "cls" / "c.mat", {"GTcls": {"Segmentation": np.full((6, 8), 15, np.uint8)}})
    (voc / "ImageSets" / "Segmentation").mkdir(parents=True)
    (voc / "ImageSets" / "Segmentation" / "train.txt").write_text("a\n")
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("b\n")
    (sbd / "train.txt").write_text("c\nb\n")
    (sbd / "val.txt").write_text("a\n")
    src = VOC(tmp_path)
    aug = src.records("aug")
    assert [r.name for r in aug] == ["a", "c"] and aug[1].label.endswith("c.mat") and aug[1].image.endswith("img/c.jpg")
    assert (src.read_label(aug[1].label) == 15).all()
    val = src.records("val")
    assert val[0].label.endswith("SegmentationClass/b.png") and src.read_label(val[0].label)[0, 0] == 255
    Image.fromarray(np.full((6, 8), 21, np.uint8)).save(voc / "SegmentationClass" / "b.png")
    with pytest.raises(ValueError, match=r"b.png: values \[21\] are not VOC class ids"):
        src.read_label(val[0].label)
    with pytest.raises(FileNotFoundError, match="trainval.txt"):
        src.records("trainval")


def test_cocostuff_ids_map_to_171_classes(tmp_path):
    ten = tmp_path / "10k"
    _jpg(ten / "images" / "COCO_x.jpg")
    (ten / "annotations").mkdir(parents=True)
    savemat(ten / "annotations" / "COCO_x.mat", {"S": np.array([[0, 1, 12, 13, 182]], np.uint16)})
    (ten / "imageLists").mkdir()
    (ten / "imageLists" / "train.txt").write_text("COCO_x\n")
    src = COCOStuff(ten, "10k")
    rec = src.records("train")[0]
    assert src.read_label(rec.label).tolist() == [[255, 0, 255, 11, 170]]
    big = tmp_path / "164k"
    _jpg(big / "images" / "val2017" / "000000000001.jpg", 1, 5)
    (big / "annotations" / "val2017").mkdir(parents=True)
    Image.fromarray(np.array([[0, 11, 12, 181, 255]], np.uint8)).save(big / "annotations" / "val2017" / "000000000001.png")
    src164 = COCOStuff(big, "164k")
    rec = src164.records("val")[0]
    assert src164.read_label(rec.label).tolist() == [[0, 255, 11, 170, 255]]
    Image.fromarray(np.array([[200]], np.uint8)).save(big / "bad.png")
    with pytest.raises(ValueError, match=r"bad.png: values \[200\] are not COCO-Stuff-164k ids"):
        src164.read_label(big / "bad.png")
    train = np.arange(171, dtype=np.uint8)
    for s in (src, src164):
        assert np.array_equal(s.from_native(s.to_native(train), "x"), train)
    assert len(L.COCOSTUFF_CLASSES) == 171 and L.COCOSTUFF_CLASSES[80] == "banner"


def test_toy_is_deterministic_and_written_once(tmp_path):
    a = make_toy_dataset(tmp_path / "a", train_images=2, val_images=1, test_images=0)
    b = make_toy_dataset(tmp_path / "b", train_images=2, val_images=1, test_images=0)
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert len(files) == 3 * 3  # image, labelIds and labelTrainIds of each of 3 pictures
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    stamp = (a / "manifest.json").stat().st_mtime_ns
    make_toy_dataset(tmp_path / "a", train_images=2, val_images=1, test_images=0)
    assert (a / "manifest.json").stat().st_mtime_ns == stamp
    lab = Cityscapes(a).read_label(Cityscapes(a).records("train")[0].label)
    assert set(np.unique(lab)) - {255} <= {0, 1, 2, 8, 10, 11, 13, 18}
