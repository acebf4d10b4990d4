"""COCO 2017 detection data, read robustly and held compactly.

Layout (the official release): `<root>/annotations/instances_{train,val}2017.json`,
`<root>/train2017/*.jpg`, `<root>/val2017/*.jpg`. Rules:
- a missing or malformed annotation file (not JSON, no images / annotations / categories list, an
  annotation without image_id / category_id / bbox) is a `DataError` naming the file;
- `subset` N keeps the first N image ids (sorted), a documented way to run on part of a split;
- images whose file is missing are skipped, named in the log and counted (`skipped_images`);
- boxes with w <= 0 or h <= 0 are skipped and counted (`dropped_boxes`), in training targets and in
  the ground truth used for scoring alike; crowd boxes are not training targets (torchvision's
  reference) but stay in the scoring ground truth, as COCOeval ignores them;
- training drops images left without a box (torchvision's reference), counted in the log.
Category ids map to contiguous labels 1..K (0 = background) and back in the results file.
Boxes of the whole split live in one float32 array with per-image offsets (no per-image dicts).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import functional as TF

from topo_connectivity.data import DataError

__all__ = ["CocoSplit", "CocoDataset", "load_coco", "collate_det"]

log = logging.getLogger("topo_connectivity")


def _read_annotations(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"{path}: annotation file not found (expected the COCO 2017 layout "
                        f"<root>/annotations/instances_<split>.json)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: malformed JSON ({e})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object with images / annotations / categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(f"{path}: missing or malformed {key!r} list")
    return data


class CocoSplit:
    """One split, validated: image ids / files / sizes, boxes (xyxy) and labels per image, the
    category mapping, the counts of what was skipped, and the ground truth for scoring."""

    def __init__(self, root, split: str, subset: int = 0, train: bool = False):
        root = Path(root)
        path = root / "annotations" / f"instances_{split}.json"
        data = _read_annotations(path)
        self.root, self.split, self.image_dir = root, split, root / split
        if not self.image_dir.is_dir():
            raise DataError(f"{self.image_dir}: no such image folder")
        cats = sorted(int(c["id"]) for c in data["categories"])
        self.cat_ids = cats
        self.categories = sorted(data["categories"], key=lambda c: int(c["id"]))
        label_of = {c: k + 1 for k, c in enumerate(cats)}
        images = sorted(data["images"], key=lambda im: int(im["id"]))
        if subset:
            images = images[:int(subset)]
        missing = [im for im in images if not (self.image_dir / im["file_name"]).is_file()]
        if missing:
            names = ", ".join(str(self.image_dir / im["file_name"]) for im in missing[:5])
            log.warning("%s: %d image(s) missing, skipped: %s%s", path, len(missing), names,
                        " ..." if len(missing) > 5 else "")
        gone = {int(im["id"]) for im in missing}
        images = [im for im in images if int(im["id"]) not in gone]
        keep_ids = {int(im["id"]) for im in images}
        per_image: dict[int, list] = {}
        gt_anns, dropped = [], 0
        for i, a in enumerate(data["annotations"]):
            try:
                img, cat, box = int(a["image_id"]), int(a["category_id"]), [float(v) for v in a["bbox"]]
            except (KeyError, TypeError, ValueError):
                raise DataError(f"{path}: annotation #{i} lacks a valid image_id / category_id / bbox") from None
            if img not in keep_ids:
                continue
            if len(box) != 4 or not all(np.isfinite(box)):
                raise DataError(f"{path}: annotation {a.get('id', i)} has a malformed bbox {a['bbox']!r}")
            if cat not in label_of:
                raise DataError(f"{path}: annotation {a.get('id', i)} has unknown category {cat}")
            if box[2] <= 0 or box[3] <= 0:
                dropped += 1
                continue
            if not train:
                gt_anns.append(a)
            if not a.get("iscrowd", 0):
                per_image.setdefault(img, []).append(box[:2] + [box[0] + box[2], box[1] + box[3], label_of[cat]])
        if dropped:
            log.warning("%s: %d box(es) with w or h <= 0 skipped", path, dropped)
        self.skipped_images, self.dropped_boxes = len(missing), dropped
        if train:
            empty = [im for im in images if int(im["id"]) not in per_image]
            if empty:
                log.info("%s: %d training image(s) without a box left out (torchvision's reference)", path, len(empty))
            images = [im for im in images if int(im["id"]) in per_image]
        self.ids = np.asarray([int(im["id"]) for im in images], np.int64)
        self.files = np.array([str(im["file_name"]).encode() for im in images], dtype=np.bytes_)
        counts = [len(per_image.get(int(i), [])) for i in self.ids]
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        rows = [r for i in self.ids for r in per_image.get(int(i), [])]
        arr = np.asarray(rows, np.float32).reshape(-1, 5)
        self.boxes, self.labels = arr[:, :4].copy(), arr[:, 4].astype(np.int64)
        # the scoring ground truth (evaluation splits): evaluated images only, degenerate boxes out
        self.gt = None if train else {"images": [{k: im[k] for k in ("id", "width", "height", "file_name") if k in im} for im in images],
                   "annotations": gt_anns, "categories": self.categories}
        if not len(self.ids):
            raise DataError(f"{path}: no usable image left (missing files or no boxes)")

    def __len__(self) -> int:
        return len(self.ids)

    def target(self, k: int) -> dict:
        s, e = self.offsets[k], self.offsets[k + 1]
        return {"boxes": torch.from_numpy(self.boxes[s:e]), "labels": torch.from_numpy(self.labels[s:e]),
                "image_id": int(self.ids[k])}

    def category_id(self, labels: np.ndarray) -> np.ndarray:
        return np.asarray(self.cat_ids, np.int64)[np.asarray(labels, np.int64) - 1]


class CocoDataset(Dataset):
    """(image tensor [3, H, W] in [0, 1], target) per image; training flips horizontally with
    probability 0.5 (torchvision's reference augmentation; the model resizes and normalises)."""

    def __init__(self, split: CocoSplit, train: bool):
        self.split, self.train = split, train

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, k: int):
        path = self.split.image_dir / self.split.files[k].decode()
        with Image.open(path) as im:
            img = TF.to_tensor(im.convert("RGB"))
        target = self.split.target(k)
        if self.train and torch.rand(()) < 0.5:
            img = img.flip(-1)
            b = target["boxes"].clone()
            w = img.shape[-1]
            b[:, [0, 2]] = w - target["boxes"][:, [2, 0]]
            target["boxes"] = b
        return img, target


def load_coco(root, split: str, subset: int = 0, train: bool = False) -> CocoDataset:
    return CocoDataset(CocoSplit(root, split, subset, train), train)


def collate_det(batch):
    return tuple(zip(*batch))


