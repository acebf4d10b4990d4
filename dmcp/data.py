"""ImageNet in its ImageFolder layout (`<root>/train/<wnid>/*.JPEG`, `<root>/val/<wnid>/*.JPEG`),
the official DMCP transforms, and the loaders.

Training: RandomResizedCrop(input) + horizontal flip + ColorJitter(0.2, 0.2, 0.2, 0.1);
validation: Resize(256) + CenterCrop(224); ImageNet mean / std (the official `utils/data.py`).

The reader is torchvision's folder dataset made robust for a hand-made or copied tree: hidden
entries (`.ipynb_checkpoints/`, `.DS_Store`, anything starting with a dot, at any depth) are
neither classes nor samples, only files with an image extension are samples, and an image that
cannot be decoded (truncated JPEG, a text file named .JPEG) is skipped with a warning naming it,
instead of killing the run from inside a DataLoader worker hours in. The skips are counted in
shared memory, so the main process sees the count of every worker (`skipped_images`), and the
loaders' collate function drops them from the batch. Gray, CMYK, RGBA and palette images are
converted to RGB (torchvision's `pil_loader`).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Subset, default_collate, get_worker_info
from torchvision import datasets, transforms

from shared import dist

__all__ = ["DataError", "ImageFolderDataset", "collate_readable", "skipped_images", "train_transform",
           "val_transform", "build_datasets", "build_loaders", "resolve_root"]

log = logging.getLogger("dmcp")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)  # what PIL raises on bad files
_SLOTS = 257  # skip counters: the main process and up to 256 DataLoader workers


class DataError(FileNotFoundError):
    """A dataset folder that does not have the expected layout (the message names the path)."""


def _hidden(name: str) -> bool:
    return name.startswith(".")


class ImageFolderDataset(datasets.DatasetFolder):
    """`<split>/<class>/**/<image>`: one class per visible sub-folder, every visible image file
    below it a sample (sorted, as torchvision's ImageFolder). Items are `(image, class index)`,
    or None for an unreadable image (dropped by `collate_readable`)."""

    def __init__(self, root, transform=None):
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"{root}: no such folder (expected ImageFolder layout: <split>/<class>/<image>)")
        self.skipped = torch.zeros(_SLOTS, dtype=torch.int64).share_memory_()
        super().__init__(str(root), loader=datasets.folder.pil_loader, extensions=IMAGE_EXTENSIONS,
                         transform=transform)
        self.imgs = self.samples

    def find_classes(self, directory):
        classes = sorted(e.name for e in os.scandir(directory) if e.is_dir() and not _hidden(e.name))
        if not classes:
            raise DataError(f"{directory}: no class folders inside")
        return classes, {c: i for i, c in enumerate(classes)}

    @staticmethod
    def make_dataset(directory, class_to_idx, extensions=None, is_valid_file=None, allow_empty=False):
        samples, empty = [], []
        for cls in sorted(class_to_idx):
            found = []
            for dirpath, dirnames, files in os.walk(os.path.join(directory, cls), followlinks=True):
                dirnames[:] = sorted(d for d in dirnames if not _hidden(d))  # never descend into .x/
                found += [os.path.join(dirpath, f) for f in sorted(files)
                          if not _hidden(f) and f.lower().endswith(IMAGE_EXTENSIONS)]
            if not found:
                empty.append(cls)
            samples += [(path, class_to_idx[cls]) for path in found]
        if empty:
            raise DataError(f"{directory}: {len(empty)} class folder(s) without images, e.g. {empty[:3]}")
        return samples

    def __getitem__(self, index):
        path, target = self.samples[index]
        try:
            image = self.loader(path)
        except UNREADABLE as e:
            worker = get_worker_info()
            self.skipped[min(_SLOTS - 1, 0 if worker is None else worker.id + 1)] += 1
            log.warning("skipping unreadable image %s (%s: %s)", path, type(e).__name__, e)
            return None
        if self.transform is not None:
            image = self.transform(image)
        return image, target


def collate_readable(batch):
    """default_collate without the unreadable items (None); a batch with none left is an error."""
    kept = [item for item in batch if item is not None]
    if not kept:
        raise DataError(f"all {len(batch)} images of a batch were unreadable (see the warnings naming them)")
    return default_collate(kept)


def skipped_images(loaders: dict) -> int:
    """Unreadable images skipped so far by this process and its workers, over the datasets of
    `loaders` (each dataset counted once)."""
    found = {}
    for loader in loaders.values():
        ds = getattr(loader, "dataset", None)
        ds = ds.dataset if isinstance(ds, Subset) else ds
        if isinstance(ds, ImageFolderDataset):
            found[id(ds)] = int(ds.skipped.sum())
    return sum(found.values())


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
    """{'train', 'val', 'classes', 'root'} for the requested splits (eval.py reads only `val`:
    the training split, 1.28 M files on ImageNet, is never scanned for it). Training and
    validation must have the same class folders."""
    root = resolve_root(args)
    out = {"root": root}
    classes = None
    for split in splits:
        sub = args.train_dir if split == "train" else args.val_dir
        tf = (train_transform(args.input_size, args.rrc_min_scale, args.color_jitter) if split == "train"
              else val_transform(args.input_size, args.test_resize))
        ds = ImageFolderDataset(root / sub, tf)
        if classes is not None and ds.classes != classes:
            raise DataError(f"{root}: the class folders of {args.train_dir}/ and {args.val_dir}/ differ "
                            f"({len(classes)} vs {len(ds.classes)} classes)")
        classes = ds.classes
        out[split] = ds
    out["classes"] = classes
    return out


def _shard(dataset, rank: int, world: int):
    """Every `world`-th item from `rank` (no padding: each image is evaluated exactly once)."""
    return dataset if world == 1 else Subset(dataset, list(range(rank, len(dataset), world)))


def build_loaders(args, data: dict, device) -> dict:
    """Loaders of `--batch-size / processes` images each (`--batch-size` is the global batch)."""
    per_process = dist.per_process_batch(args.batch_size)
    pin = torch.device(device).type == "cuda"
    common = dict(num_workers=args.workers, pin_memory=pin, collate_fn=collate_readable)
    loaders = {}
    if "train" in data:
        sampler = dist.build_sampler(data["train"], shuffle=True, seed=args.seed, drop_last=True)
        loaders["train"] = DataLoader(data["train"], batch_size=per_process, sampler=sampler, drop_last=True,
                                      persistent_workers=args.workers > 0, **common)
        loaders["train_sampler"] = sampler
        if len(loaders["train"]) == 0:
            raise ValueError(f"{len(data['train'])} training images < global batch {args.batch_size}")
    if "val" in data:
        loaders["val"] = DataLoader(_shard(data["val"], dist.rank(), dist.world_size()), batch_size=per_process,
                                    shuffle=False, **common)
    return loaders
