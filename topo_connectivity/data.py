"""ImageNet in its ImageFolder layout, read robustly, and the classification loaders.

Layout: `<data-root>/train/<wnid>/*.JPEG` and `<data-root>/val/<wnid>/*.JPEG` (the val images
sorted into class folders, as torchvision's reference expects). Rules, checked before any work:
- a missing split folder, a split without class folders, a class folder without images, or train
  and val naming different classes is a `DataError` naming the folder (and the classes);
- hidden entries (".ipynb_checkpoints", ".DS_Store", "._x.JPEG") and files that are not images are
  neither classes nor samples;
- gray, CMYK, palette and RGBA images are converted to RGB;
- an image that cannot be decoded is skipped with a warning naming it and counted: in training
  the next decodable image takes its place (batch shapes stay equal on every rank), in evaluation
  the batch is one image shorter (no image counts twice; `val_images` says how many were scored).
Paths are held as one numpy byte array (relative to the split folder) so that a 1.28M-image list
costs tens of MB and is not copied into every worker by reference counting.

Transforms (torchvision's classification reference): training RandomResizedCrop + horizontal flip,
evaluation Resize(256) + CenterCrop(224), ImageNet mean / std.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision import transforms

from shared import dist

__all__ = ["DataError", "IMAGE_EXTENSIONS", "scan_split", "check_splits", "ImageFolderDataset", "collate_skip",
           "train_transform", "val_transform", "build_loaders", "shard"]

log = logging.getLogger("topo_connectivity")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class DataError(FileNotFoundError):
    """A dataset folder or file that cannot be used; the message names it and the problem."""


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _class_folders(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder (expected the ImageFolder layout {folder}/<class>/<image>)")
    classes = sorted(e.name for e in os.scandir(folder) if e.is_dir() and _visible(e.name))
    if not classes:
        raise DataError(f"{folder}: no class folders inside (expected {folder}/<class>/<image>)")
    return classes


def _images_of(class_dir: Path) -> list[str]:
    """Image files under one class folder (recursively), relative to it, hidden entries skipped."""
    out = []
    for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if _visible(d))
        rel = os.path.relpath(dirpath, class_dir)
        for f in sorted(filenames):
            if _visible(f) and f.lower().endswith(IMAGE_EXTENSIONS):
                out.append(f if rel == "." else os.path.join(rel, f))
    return out


def scan_split(folder: str | os.PathLike, classes: list[str] | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(classes, relative paths as bytes [N], targets int32 [N]) of one split; errors name the
    folder. `classes` given: the split must have exactly these class folders."""
    folder = Path(folder)
    found = _class_folders(folder)
    if classes is not None and found != list(classes):
        missing, extra = sorted(set(classes) - set(found)), sorted(set(found) - set(classes))
        raise DataError(f"{folder}: class folders differ from the training classes "
                        f"(missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                        f"extra {extra[:5]}{'...' if len(extra) > 5 else ''})")
    paths, targets = [], []
    for k, c in enumerate(found):
        files = _images_of(folder / c)
        if not files:
            raise DataError(f"{folder / c}: class folder without images ({', '.join(IMAGE_EXTENSIONS)})")
        paths += [os.path.join(c, f) for f in files]
        targets += [k] * len(files)
    return found, np.array([p.encode() for p in paths], dtype=np.bytes_), np.asarray(targets, np.int32)


def check_splits(root: str | os.PathLike, splits=("train", "val")) -> dict:
    """Scan every split before any work; {split: (classes, paths, targets)}. The first split's
    classes are the reference the others must match."""
    root = Path(root)
    out, classes = {}, None
    for split in splits:
        cls, paths, targets = scan_split(root / split, classes)
        classes = classes or cls
        out[split] = (cls, paths, targets)
    return out


class ImageFolderDataset(Dataset):
    """One split: (RGB image through `transform`, target, images skipped). An undecodable file is
    skipped with a warning naming it: with `substitute` (training) the next decodable image takes
    its place, so every rank's batch keeps its size (DDP and BN see the same shapes); without it
    (evaluation) the item is None and the collate function drops it, so no image counts twice."""

    def __init__(self, folder, scanned, transform=None, substitute: bool = False):
        self.folder = Path(folder)
        self.classes, self.paths, self.targets = scanned
        self.transform = transform
        self.substitute = bool(substitute)

    def __len__(self) -> int:
        return len(self.paths)

    def path(self, index: int) -> Path:
        return self.folder / self.paths[index].decode()

    def _load(self, index: int):
        path = self.path(index)
        try:
            with Image.open(path) as im:
                if im.mode == "P" and "transparency" in im.info:
                    im = im.convert("RGBA")  # PIL's advice for palettes with a transparent colour
                return im.convert("RGB")  # gray, CMYK, palette, RGBA -> RGB
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            log.warning("skipping undecodable image %s (%s)", path, e)
            return None

    def __getitem__(self, index: int):
        skipped = 0
        for attempt in range(len(self) if self.substitute else 1):
            i = (index + attempt) % len(self)
            im = self._load(i)
            if im is not None:
                return (self.transform(im) if self.transform is not None else im), int(self.targets[i]), skipped
            skipped += 1
        if self.substitute:
            raise DataError(f"{self.folder}: no decodable image at all")
        return None


def collate_skip(batch):
    """Stack the decodable samples: (images, targets, images skipped)."""
    ok = [b for b in batch if b is not None]
    skipped = len(batch) - len(ok) + sum(b[2] for b in ok)
    if not ok:
        return None, None, skipped
    return torch.stack([b[0] for b in ok]), torch.tensor([b[1] for b in ok]), skipped


def train_transform(input_size: int, min_scale: float = 0.08):
    return transforms.Compose([transforms.RandomResizedCrop(input_size, scale=(min_scale, 1.0)),
                               transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                               transforms.Normalize(MEAN, STD)])


def val_transform(input_size: int, resize: int):
    return transforms.Compose([transforms.Resize(resize), transforms.CenterCrop(input_size), transforms.ToTensor(),
                               transforms.Normalize(MEAN, STD)])


def shard(dataset, rank: int, world: int):
    """Every `world`-th item from `rank`: each validation image is evaluated exactly once."""
    return dataset if world == 1 else Subset(dataset, list(range(rank, len(dataset), world)))


def build_loaders(args, root: Path, scanned: dict, device) -> dict:
    """{'train', 'train_sampler', 'val', 'classes'} for the splits in `scanned`; the batch is the
    global batch split over processes (shared.dist.per_process_batch)."""
    pin = torch.device(device).type == "cuda"
    per = dist.per_process_batch(args.batch_size)
    out = {}
    if "train" in scanned:
        ds = ImageFolderDataset(root / "train", scanned["train"], train_transform(args.input_size, args.rrc_min_scale),
                                substitute=True)
        sampler = dist.build_sampler(ds, shuffle=True, seed=args.seed, drop_last=True)
        out["train"] = DataLoader(ds, batch_size=per, sampler=sampler, num_workers=args.workers, drop_last=True,
                                  pin_memory=pin, collate_fn=collate_skip, persistent_workers=args.workers > 0)
        out["train_sampler"] = sampler
        if len(out["train"]) == 0:
            raise DataError(f"{root / 'train'}: {len(ds)} images, fewer than one global batch of {args.batch_size}")
        out["classes"] = scanned["train"][0]
    if "val" in scanned:
        ds = ImageFolderDataset(root / "val", scanned["val"], val_transform(args.input_size, args.test_resize))
        out["val"] = DataLoader(shard(ds, dist.rank(), dist.world_size()), batch_size=per, shuffle=False,
                                num_workers=args.workers, pin_memory=pin, collate_fn=collate_skip)
        out.setdefault("classes", scanned["val"][0])
    return out
