"""The ImageFolder reader on a hand-made ImageNet-style tree: hidden and non-image files ignored,
gray / CMYK / RGBA / palette images as RGB, undecodable images skipped with a warning naming them,
layout errors naming the folder; the toy generator is deterministic and in the real layout."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from st_nas.data import (
    DataError,
    DataWarning,
    ImageList,
    collate_skip,
    eval_transform,
    held_out_split,
    load_splits,
    scan_split,
)
from st_nas.toy import WNIDS, make_toy_dataset


def _tree(root):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in ("n001", "n002"):
            d = root / split / c
            d.mkdir(parents=True)
            rgb = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
            Image.fromarray(rgb).save(d / "rgb.JPEG")
            Image.fromarray(rgb[..., 0]).save(d / "gray.JPEG")
            Image.fromarray(rgb).convert("CMYK").save(d / "cmyk.jpg")
            Image.fromarray(np.dstack([rgb, rgb[..., :1]])).save(d / "rgba.png")
            Image.fromarray(rgb).convert("P").save(d / "palette.png")
            (d / "notes.txt").write_text("not an image")
            (d / ".DS_Store").write_bytes(b"\0\1")
        (root / split / ".ipynb_checkpoints").mkdir()
        (root / split / ".ipynb_checkpoints" / "x.JPEG").write_bytes(b"junk")
    good = (root / "train" / "n001" / "rgb.JPEG").read_bytes()
    (root / "train" / "n001" / "truncated.JPEG").write_bytes(good[: len(good) // 2])
    (root / "train" / "n002" / "garbage.JPEG").write_bytes(b"this is not a jpeg")
    return root


def test_hidden_and_non_image_files_are_ignored(tmp_path):
    root = _tree(tmp_path)
    classes, files = scan_split(root / "train")
    assert classes == ["n001", "n002"]
    assert files[0] == ["cmyk.jpg", "gray.JPEG", "palette.png", "rgb.JPEG", "rgba.png", "truncated.JPEG"]


def test_every_mode_becomes_rgb_and_bad_images_are_skipped_with_a_warning(tmp_path):
    root = _tree(tmp_path)
    classes, files = scan_split(root / "train")
    ds = ImageList(root / "train", classes, files, eval_transform(16))
    items = []
    with pytest.warns(DataWarning) as caught:
        for i in range(len(ds)):
            items.append(ds[i])
    bad = sorted(str(w.message).split(":")[0] for w in caught)
    assert bad == [str(root / "train" / "n001" / "truncated.JPEG"), str(root / "train" / "n002" / "garbage.JPEG")]
    good = [x for x in items if x is not None]
    assert len(good) == 10 and all(x.shape == (3, 16, 16) for x, _ in good)
    x, y, skipped = collate_skip(items[:7])
    assert x.shape == (6, 3, 16, 16) and skipped == 1 and y.tolist() == [0] * 5 + [1]
    assert collate_skip([None, None]) is None


def _args(root, **kw):
    return SimpleNamespace(**{"data_root": str(root), "train_dir": "train", "val_dir": "val", "toy_root": "", **kw})


def test_layout_errors_name_the_folder(tmp_path):
    root = _tree(tmp_path / "a")
    splits = load_splits(_args(root))
    assert splits["classes"] == ["n001", "n002"]
    with pytest.raises(DataError, match=r"no such folder"):
        load_splits(_args(tmp_path / "missing"))
    (root / "val" / "n003").mkdir()
    with pytest.raises(DataError, match=r"n003: class folder without images"):
        load_splits(_args(root))
    Image.new("RGB", (8, 8)).save(root / "val" / "n003" / "a.png")
    with pytest.raises(DataError, match=r"different class folders.*only in val/: \['n003'\]"):
        load_splits(_args(root))
    with pytest.raises(DataError, match=r"val2: no such folder"):
        load_splits(_args(tmp_path / "a", val_dir="val2"))
    with pytest.raises(DataError, match="not the 3 classes"):
        load_splits(_args(root), train=False, classes=["n001", "n002", "n009"])


def test_held_out_split_is_per_class_and_fixed():
    files = [[f"{i}" for i in range(10)], [f"{i}" for i in range(7)]]
    tr, held = held_out_split(files, 3)
    assert len(held) == 6 and len(tr) == 11 and not set(tr) & set(held)
    assert sum(h < 10 for h in held) == 3
    assert np.array_equal(held, held_out_split(files, 3)[1])
    with pytest.raises(DataError, match="only 7 training images"):
        held_out_split(files, 7)


def test_toy_data_is_deterministic_and_in_imagenet_layout(tmp_path):
    a = make_toy_dataset(tmp_path / "a", seed=3, train_per_class=3, val_per_class=2)
    b = make_toy_dataset(tmp_path / "b", seed=3, train_per_class=3, val_per_class=2)
    classes, files = scan_split(a / "train")
    assert classes == sorted(WNIDS) and all(len(f) == 3 and f[0].endswith(".JPEG") for f in files)
    for c, names in zip(classes, files):
        for n in names:
            assert (a / "train" / c / n).read_bytes() == (b / "train" / c / n).read_bytes()
    stamp = (a / "manifest.json").stat().st_mtime_ns
    make_toy_dataset(tmp_path / "a", seed=3, train_per_class=3, val_per_class=2)
    assert (a / "manifest.json").stat().st_mtime_ns == stamp
    assert json.loads((a / "manifest.json").read_text())["settings"]["seed"] == 3
    x, y = ImageList(a / "val", classes, scan_split(a / "val")[1], eval_transform(32))[0]
    assert x.shape == (3, 32, 32) and y == 0 and torch.isfinite(x).all()
