"""ImageNet in its ImageFolder layout (`<root>/train/<wnid>/*.JPEG`, `<root>/val/<wnid>/*.JPEG`),
the official DMCP transforms, and the loaders.

Training: RandomResizedCrop(input) + horizontal flip + ColorJitter(0.2, 0.2, 0.2, 0.1);
validation: Resize(256) + CenterCrop(224); ImageNet mean / std (the official `utils/data.py`).
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from shared import dist

__all__ = ["DataError", "check_image_folder", "train_transform", "val_transform", "build_datasets",
           "build_loaders", "resolve_root"]

log = logging.getLogger("dmcp")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class DataError(FileNotFoundError):
    """A dataset folder that does not have the expected layout (the message names the path)."""


def check_image_folder(root: Path, split: str) -> list[str]:
    """Class folder names of `root/split`, after checking the layout."""
    folder = Path(root) / split
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder (expected ImageFolder layout: {root}/{split}/<class>/<image>)")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{folder}: no class folders inside")
    empty = [c for c in classes if not any(f.suffix.lower() in IMAGE_EXTENSIONS for f in (folder / c).iterdir())]
    if empty:
        raise DataError(f"{folder}: {len(empty)} class folder(s) without images, e.g. {empty[:3]}")
    return classes


def train_transform(input_size: int, min_scale: float = 0.08, color_jitter=(0.2, 0.2, 0.2, 0.1)):
    t = [transforms.RandomResizedCrop(input_size, scale=(min_scale, 1.0)), transforms.RandomHorizontalFlip()]
    if color_jitter and any(float(c) > 0 for c in color_jitter):
        t.append(transforms.ColorJitter(*[float(c) for c in color_jitter]))
    t += [transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
    return transforms.Compose(t)


def val_transform(input_size: int, test_resize: int = 256):
    return transforms.Compose([transforms.Resize(test_resize), transforms.CenterCrop(input_size),
                               transforms.ToTensor(), transforms.Normalize(MEAN, STD)])


def resolve_root(args) -> Path:
    """--data-root, or the toy data (written on first use, by rank 0)."""
    if args.data_root:
        root = Path(args.data_root)
        if not root.is_dir():
            raise DataError(f"--data-root {root}: no such folder")
        return root
    from dmcp import toy

    root = Path(args.toy_root) if args.toy_root else toy.DEFAULT_OUT
    if dist.is_main():
        toy.make_toy_dataset(root, seed=0, train_per_class=args.toy_train_per_class,
                             val_per_class=args.toy_val_per_class)
    dist.barrier()
    return root


def build_datasets(args, splits=("train", "val")) -> dict:
    """{'train', 'val', 'calib', 'classes', 'root'}; `calib` is the training set with the
    training transforms (BN re-calibration draws from it, as the official code does)."""
    root = resolve_root(args)
    out = {"root": root}
    classes = None
    for split in splits:
        sub = args.train_dir if split == "train" else args.val_dir
        names = check_image_folder(root, sub)
        if classes is not None and names != classes:
            raise DataError(f"{root}: the class folders of {args.train_dir}/ and {args.val_dir}/ differ "
                            f"({len(classes)} vs {len(names)} classes)")
        classes = names
        tf = (train_transform(args.input_size, args.rrc_min_scale, args.color_jitter) if split == "train"
              else val_transform(args.input_size, args.test_resize))
        out[split] = datasets.ImageFolder(str(root / sub), tf)
    out["classes"] = classes
    return out


def _shard(dataset, rank: int, world: int):
    """Every `world`-th item from `rank` (no padding: each image is evaluated exactly once)."""
    return dataset if world == 1 else Subset(dataset, list(range(rank, len(dataset), world)))


def build_loaders(args, data: dict, device) -> dict:
    pin = torch.device(device).type == "cuda"
    loaders = {}
    if "train" in data:
        sampler = dist.build_sampler(data["train"], shuffle=True, seed=args.seed, drop_last=True)
        loaders["train"] = DataLoader(data["train"], batch_size=args.batch_size, sampler=sampler,
                                      num_workers=args.workers, drop_last=True, pin_memory=pin,
                                      persistent_workers=args.workers > 0)
        loaders["train_sampler"] = sampler
        if len(loaders["train"]) == 0:
            raise ValueError(f"{len(data['train'])} training images < batch size {args.batch_size} x "
                             f"{dist.world_size()} processes")
    if "val" in data:
        loaders["val"] = DataLoader(_shard(data["val"], dist.rank(), dist.world_size()),
                                    batch_size=args.batch_size, shuffle=False, num_workers=args.workers,
                                    pin_memory=pin)
    return loaders
