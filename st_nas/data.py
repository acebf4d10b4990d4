"""ImageNet in its ImageFolder layout (`<root>/train/<wnid>/*.JPEG`, `<root>/val/<wnid>/*.JPEG`),
the search-time splits and the loaders.

Reading rules (checked before any work starts):
- a missing split folder, a class folder without images, or train/val class folders that differ
  raise `DataError` naming the folder (and the classes that differ);
- hidden files and folders (`.ipynb_checkpoints/`, `.DS_Store`) and files that are not images by
  extension are neither classes nor samples;
- every image is converted to RGB (gray, CMYK, RGBA and palette images all load);
- an image that cannot be decoded (corrupt, truncated) is skipped with a `DataWarning` naming the
  file; `collate_skip` drops it from its batch and counts it, so one bad JPEG never stops a run.

Splits: the proxy is measured on `--search-val-per-class` training images per class held out from
supernet training (SPOS holds out 50,000 ImageNet training images the same way); the retrained
network is evaluated on `val/`. The held-out images are the same for every seed.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Subset, default_collate
from torchvision import transforms

from shared import dist

__all__ = ["DataError", "DataWarning", "IMAGE_EXTENSIONS", "scan_split", "ImageList", "collate_skip",
           "train_transform", "eval_transform", "resolve_root", "load_splits", "shard", "held_out_split",
           "make_loader"]

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class DataError(FileNotFoundError):
    """A dataset folder without the expected layout (the message names the folder)."""


class DataWarning(UserWarning):
    """An image that was skipped (the message names the file)."""


def _visible(entries):
    return [e for e in entries if not e.name.startswith(".")]


def scan_split(folder: str | os.PathLike) -> tuple[list[str], list[list[str]]]:
    """(sorted class names, per class the sorted image file names) of one split folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder (expected ImageFolder layout: "
                        f"{folder.parent}/{folder.name}/<class>/<image>)")
    with os.scandir(folder) as it:
        classes = sorted(e.name for e in _visible(it) if e.is_dir())
    if not classes:
        raise DataError(f"{folder}: no class folders inside")
    files = []
    for c in classes:
        with os.scandir(folder / c) as it:
            names = sorted(e.name for e in _visible(it) if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS))
        if not names:
            raise DataError(f"{folder / c}: class folder without images ({', '.join(IMAGE_EXTENSIONS)})")
        files.append(names)
    return classes, files


def check_same_classes(train_dir: Path, train_classes: list[str], val_dir: Path, val_classes: list[str]) -> None:
    if train_classes != val_classes:
        only_t = sorted(set(train_classes) - set(val_classes))
        only_v = sorted(set(val_classes) - set(train_classes))
        raise DataError(f"{train_dir} and {val_dir} have different class folders ({len(train_classes)} vs "
                        f"{len(val_classes)}): only in {train_dir.name}/: {only_t[:5]}, only in {val_dir.name}/: "
                        f"{only_v[:5]}")


class ImageList(Dataset):
    """Images of one split as compact arrays (fixed-width bytes paths and int16 labels, so forked
    loader workers share them instead of copying millions of Python objects)."""

    def __init__(self, folder, classes: list[str], files: list[list[str]], transform=None):
        self.folder = str(folder)
        rel = [f"{c}/{f}" for c, names in zip(classes, files) for f in names]
        labels = [k for k, names in enumerate(files) for _ in names]
        self.paths = np.array([r.encode() for r in rel], dtype=np.bytes_)
        self.labels = np.array(labels, dtype=np.int16 if len(classes) < 2**15 else np.int32)
        self.transform = transform
        self.num_classes = len(classes)

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices, transform) -> ImageList:
        """The images at `indices` with their own transform (the arrays are sliced, not rebuilt)."""
        out = object.__new__(ImageList)
        out.folder, out.num_classes, out.transform = self.folder, self.num_classes, transform
        out.paths, out.labels = self.paths[indices], self.labels[indices]
        return out

    def path(self, index: int) -> str:
        return os.path.join(self.folder, self.paths[index].decode())

    def __getitem__(self, index: int):
        path = self.path(index)
        try:
            with Image.open(path) as im:
                img = im.convert("RGB")  # decodes fully: truncated files fail here
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            warnings.warn(f"{path}: cannot decode the image ({type(e).__name__}: {e}); skipped", DataWarning,
                          stacklevel=2)
            return None
        x = self.transform(img) if self.transform is not None else img
        return x, int(self.labels[index])


def collate_skip(batch):
    """Collate what decoded; returns (images, targets, number skipped), or None when all failed."""
    good = [b for b in batch if b is not None]
    if not good:
        return None
    x, y = default_collate(good)
    return x, y, len(batch) - len(good)


def train_transform(input_size: int, min_scale: float = 0.08, jitter: float = 0.4):
    """SPOS's training augmentation: RandomResizedCrop, ColorJitter(0.4, 0.4, 0.4), flip."""
    t = [transforms.RandomResizedCrop(input_size, scale=(min_scale, 1.0))]
    if jitter > 0:
        t.append(transforms.ColorJitter(jitter, jitter, jitter))
    t += [transforms.RandomHorizontalFlip(), transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
    return transforms.Compose(t)


def eval_transform(input_size: int, crop_ratio: float = 0.875):
    return transforms.Compose([transforms.Resize(int(round(input_size / crop_ratio))),
                               transforms.CenterCrop(input_size), transforms.ToTensor(),
                               transforms.Normalize(MEAN, STD)])


def resolve_root(args) -> Path:
    """--data-root, or the toy data (written once by rank 0)."""
    if args.data_root:
        root = Path(args.data_root)
        if not root.is_dir():
            raise DataError(f"--data-root {root}: no such folder")
        return root
    from st_nas import toy

    root = Path(args.toy_root) if args.toy_root else toy.DEFAULT_OUT
    if dist.is_main():
        toy.make_toy_dataset(root, seed=0, train_per_class=args.toy_train_per_class,
                             val_per_class=args.toy_val_per_class)
    dist.barrier()
    return root


def load_splits(args, train: bool = True, val: bool = True, classes: list[str] | None = None) -> dict:
    """Scan and check the splits asked for: {"root", "classes", "train": (folder, files),
    "val": (folder, files)}. `classes` (from a checkpoint) must match the folders found."""
    root = resolve_root(args)
    out = {"root": root}
    found = {}
    for split, wanted in (("train", train), ("val", val)):
        if wanted:
            folder = root / (args.train_dir if split == "train" else args.val_dir)
            names, files = scan_split(folder)
            found[split] = (folder, names)
            out[split] = (folder, files)
    if train and val:
        check_same_classes(found["train"][0], found["train"][1], found["val"][0], found["val"][1])
    names = next(iter(found.values()))[1]
    if classes is not None and list(classes) != names:
        folder = next(iter(found.values()))[0]
        raise DataError(f"{folder}: its {len(names)} class folders are not the {len(classes)} classes the "
                        f"network was trained on (classes.json / checkpoint)")
    out["classes"] = names
    return out


def held_out_split(files: list[list[str]], per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """(supernet-training indices, held-out indices) into the flattened training list: per class,
    `per_class` images drawn with a fixed generator (the same split for every seed)."""
    rng = np.random.default_rng(0)
    train, held = [], []
    start = 0
    for names in files:
        n = len(names)
        if per_class >= n:
            raise DataError(f"--search-val-per-class {per_class}: a class has only {n} training images "
                            f"(need more than the held-out count)")
        perm = rng.permutation(n) + start
        held.append(np.sort(perm[:per_class]))
        train.append(np.sort(perm[per_class:]))
        start += n
    return np.concatenate(train), np.concatenate(held)


def shard(dataset):
    """Every world-th item from this rank (no padding: each image is evaluated once)."""
    ws = dist.world_size()
    return dataset if ws == 1 else Subset(dataset, list(range(dist.rank(), len(dataset), ws)))


def make_loader(dataset, batch_size: int, workers: int, device, sampler=None, drop_last: bool = False):
    pin = torch.device(device).type == "cuda"
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False, num_workers=workers,
                      drop_last=drop_last, pin_memory=pin, collate_fn=collate_skip,
                      persistent_workers=workers > 0)
