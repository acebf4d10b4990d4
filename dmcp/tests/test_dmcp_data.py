"""The ImageFolder reader on a hand-made ImageNet-style tree: hidden folders and non-image files
are neither classes nor samples, an undecodable image is skipped with a warning naming it (also
inside a DataLoader worker, counted in shared memory), and gray, CMYK, RGBA and palette images
load as RGB."""
import logging

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from dmcp.data import DataError, ImageFolderDataset, collate_readable, skipped_images, val_transform

MODES = ("L", "CMYK", "RGBA", "P", "RGB")


def _tree(root):
    rng = np.random.default_rng(0)
    for cls in ("n01", "n02"):
        for i, mode in enumerate(MODES):
            rgb = Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
            img = rgb.convert(mode) if mode != "P" else rgb.convert("P", palette=Image.Palette.ADAPTIVE)
            img.save(root / "train" / cls / f"{cls}_{i}_{mode}.{'jpg' if mode in ('L', 'CMYK') else 'png'}")
    # what a notebook, a Mac or a copy leaves behind
    (root / "train" / ".ipynb_checkpoints").mkdir()
    Image.new("RGB", (8, 8)).save(root / "train" / ".ipynb_checkpoints" / "x-checkpoint.png")
    (root / "train" / "n01" / ".ipynb_checkpoints").mkdir()
    Image.new("RGB", (8, 8)).save(root / "train" / "n01" / ".ipynb_checkpoints" / "y.png")
    (root / "train" / "n01" / ".DS_Store").write_bytes(b"\0\1")
    (root / "train" / "n01" / "README.txt").write_text("not an image")
    # an undecodable JPEG: a truncated file
    good = root / "train" / "n02" / "n02_0_L.jpg"
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(good.with_name("n02_9_broken.jpg"), quality=95)
    broken = good.with_name("n02_9_broken.jpg")
    broken.write_bytes(broken.read_bytes()[:400])
    return root / "train", broken


@pytest.fixture
def tree(tmp_path):
    for cls in ("n01", "n02"):
        (tmp_path / "train" / cls).mkdir(parents=True)
    return _tree(tmp_path)


def test_hidden_entries_and_other_files_are_not_classes_or_samples(tree):
    split, broken = tree
    ds = ImageFolderDataset(split, val_transform(16, 16))
    assert ds.classes == ["n01", "n02"]
    names = sorted(p.rsplit("/", 1)[-1] for p, _ in ds.samples)
    assert len(names) == 2 * len(MODES) + 1 and broken.name in names
    assert not any(n.startswith(".") or n.endswith(".txt") or "checkpoint" in n for n in names)


def test_gray_cmyk_rgba_and_palette_images_load_as_rgb(tree):
    ds = ImageFolderDataset(tree[0], val_transform(16, 16))
    for i, (path, target) in enumerate(ds.samples):
        if "broken" in path:
            continue
        x, y = ds[i]
        assert x.shape == (3, 16, 16) and y == target and torch.isfinite(x).all(), path
    assert {p.rsplit("_", 1)[-1].split(".")[0] for p, _ in ds.samples} >= set(MODES)


def test_an_undecodable_image_is_skipped_with_a_warning_naming_it(tree, caplog):
    split, broken = tree
    ds = ImageFolderDataset(split, val_transform(16, 16))
    with caplog.at_level(logging.WARNING, logger="dmcp"):
        batches = list(DataLoader(ds, batch_size=4, collate_fn=collate_readable))
    assert sum(len(y) for _, y in batches) == len(ds) - 1
    assert str(broken) in caplog.text and "skipping unreadable image" in caplog.text
    assert int(ds.skipped.sum()) == 1
    # inside DataLoader workers: no crash, and the workers' count reaches the main process
    ds2 = ImageFolderDataset(split, val_transform(16, 16))
    loader = DataLoader(ds2, batch_size=4, num_workers=2, collate_fn=collate_readable)
    assert sum(len(y) for _, y in loader) == len(ds2) - 1
    assert skipped_images({"val": loader}) == 1


def test_layout_errors_name_the_folder(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        ImageFolderDataset(tmp_path / "nothing")
    (tmp_path / "a" / ".hidden").mkdir(parents=True)
    with pytest.raises(DataError, match="no class folders"):
        ImageFolderDataset(tmp_path / "a")
    (tmp_path / "a" / "cls").mkdir()
    (tmp_path / "a" / "cls" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="without images"):
        ImageFolderDataset(tmp_path / "a")
    with pytest.raises(DataError, match="all 2 images of a batch were unreadable"):
        collate_readable([None, None])
