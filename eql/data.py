"""LVIS data: the annotation files (v0.5 and v1), images from the COCO folders, polygon masks,
class frequencies and r / c / f groups, repeat-factor sampling and the training augmentation.

Layout (detectron2's, which the official EQL code uses)::

    <data-root>/lvis/lvis_v0.5_train.json  lvis_v0.5_val.json  lvis_v1_train.json  lvis_v1_val.json
    <data-root>/coco/train2017/*.jpg  coco/val2017/*.jpg

An image entry's file is ``<image-root>/<split>/<name>`` from its ``coco_url``
(``http://images.cocodataset.org/train2017/000000391895.jpg``, LVIS v1), else from ``file_name``
(LVIS v0.5; a ``COCO_val2014_`` prefix is dropped) looked up in ``train2017`` and ``val2017``.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from shared.formats import FormatError, load_json

log = logging.getLogger("eql")
ANN_FILES = {"lvis_v0.5": ("lvis_v0.5_train.json", "lvis_v0.5_val.json"),
             "lvis_v1": ("lvis_v1_train.json", "lvis_v1_val.json")}


class LVISDataError(ValueError):
    """An annotation file or image that cannot be used (names the file and the problem)."""


def frequency_group(image_count: int) -> str:
    """LVIS groups by training-image count: rare 1-10, common 11-100, frequent > 100."""
    return "r" if image_count <= 10 else ("c" if image_count <= 100 else "f")


@dataclass
class LVISAnnotations:
    """One LVIS annotation file, validated and indexed.

    ``cat_ids`` sorted category ids (contiguous index i <-> label i + 1 in torchvision's convention);
    ``frequency`` r / c / f per category (the file's, else from image counts); ``image_count`` per
    category (the file's ``image_count``, else counted from the annotations); ``anns_by_image``.
    """
    path: Path
    images: list
    cat_ids: list
    categories: list
    anns_by_image: dict
    image_count: np.ndarray
    frequency: list
    raw: dict = field(repr=False, default=None)

    @property
    def num_classes(self) -> int:
        return len(self.cat_ids)

    @property
    def num_annotated_images(self) -> int:
        return sum(1 for im in self.images if self.anns_by_image.get(im["id"]))

    def freq_info(self) -> np.ndarray:
        """f_j = images containing class j / annotated training images (the official freq_info)."""
        return self.image_count / max(self.num_annotated_images, 1)

    def contiguous(self, cat_id: int) -> int:
        return self._cat_index[cat_id]

    def __post_init__(self):
        self._cat_index = {c: i for i, c in enumerate(self.cat_ids)}


def load_lvis(path: str | os.PathLike, keep_raw: bool = False) -> LVISAnnotations:
    """Read and check an LVIS (or COCO-style) annotation file; errors name the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise LVISDataError(f"{path}: annotation file not found")
    try:
        data = load_json(path)   # a FormatError names the file: not JSON, or not an object
    except FormatError as e:
        raise LVISDataError(f"{e} (an LVIS file holds images / annotations / categories)") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise LVISDataError(f"{path}: missing or malformed {key!r} list")
    cats = sorted(data["categories"], key=lambda c: c["id"])
    cat_ids = [int(c["id"]) for c in cats]
    if len(set(cat_ids)) != len(cat_ids):
        raise LVISDataError(f"{path}: duplicate category ids")
    img_ids = {int(im["id"]) for im in data["images"]}
    known = set(cat_ids)
    anns_by_image: dict = {}
    for i, a in enumerate(data["annotations"]):
        try:
            img, cat, box = int(a["image_id"]), int(a["category_id"]), a["bbox"]
        except (KeyError, TypeError, ValueError):
            raise LVISDataError(f"{path}: annotation #{i} lacks image_id / category_id / bbox") from None
        if img not in img_ids:
            raise LVISDataError(f"{path}: annotation {a.get('id', i)} refers to image {img}, not in 'images'")
        if cat not in known:
            raise LVISDataError(f"{path}: annotation {a.get('id', i)} has unknown category {cat}")
        if not (isinstance(box, (list, tuple)) and len(box) == 4 and all(math.isfinite(float(v)) for v in box)):
            raise LVISDataError(f"{path}: annotation {a.get('id', i)} has a malformed bbox {box!r}")
        anns_by_image.setdefault(img, []).append(a)
    if all("image_count" in c for c in cats):
        image_count = np.asarray([c["image_count"] for c in cats], np.float64)
    else:
        index = {c: j for j, c in enumerate(cat_ids)}
        image_count = np.zeros(len(cats))
        for anns in anns_by_image.values():
            for c in {int(a["category_id"]) for a in anns}:
                image_count[index[c]] += 1
    frequency = [c.get("frequency") or frequency_group(int(n)) for c, n in zip(cats, image_count)]
    return LVISAnnotations(path, data["images"], cat_ids, cats, anns_by_image, image_count, frequency,
                           raw=data if keep_raw else None)


def evaluation_gt(lvis: LVISAnnotations, image_ids, with_segm: bool) -> dict:
    """The ground truth as ``eql.lvis_eval`` reads it, restricted to the evaluated images and to the
    fields the evaluation uses (polygons only for mask AP): a fraction of the annotation file's
    objects, kept on every rank for the evaluation shared out over ranks. Needs ``keep_raw``."""
    if lvis.raw is None:
        raise ValueError(f"{lvis.path}: load it with keep_raw=True to evaluate on it")
    ids = {int(i) for i in image_ids}
    img_keys = ("id", "height", "width", "neg_category_ids", "not_exhaustive_category_ids")
    ann_keys = ("id", "image_id", "category_id", "area", "bbox", "ignore") + (("segmentation",) if with_segm else ())
    return {"images": [{k: im[k] for k in img_keys if k in im} for im in lvis.raw["images"] if int(im["id"]) in ids],
            "annotations": [{k: a[k] for k in ann_keys if k in a} for a in lvis.raw["annotations"]
                            if int(a["image_id"]) in ids],
            "categories": [{"id": c, "frequency": f} for c, f in zip(lvis.cat_ids, lvis.frequency)]}


def resolve_image_path(img: dict, image_root: Path) -> Path:
    """The image file of an LVIS image entry (coco_url's split/name, else file_name)."""
    if img.get("coco_url"):
        split, name = img["coco_url"].rstrip("/").split("/")[-2:]
        return image_root / split / name
    name = str(img.get("file_name", ""))
    if not name:
        raise LVISDataError(f"image {img.get('id')} has neither coco_url nor file_name")
    name = name.split("_")[-1] if name.startswith("COCO_") else name
    for split in ("train2017", "val2017", ""):
        p = image_root / split / name
        if p.is_file():
            return p
    return image_root / "train2017" / name


def repeat_factors(lvis: LVISAnnotations, image_ids: list, threshold: float) -> np.ndarray:
    """Repeat-factor sampling (Gupta et al., LVIS; detectron2's): r(c) = max(1, sqrt(t / f(c))) with
    f(c) the fraction of the listed training images that contain c; an image's factor is the
    maximum over its categories (1 for an image without annotations). ``threshold <= 0``: all 1."""
    if threshold <= 0:
        return np.ones(len(image_ids))
    counts = np.zeros(lvis.num_classes)
    cats_per_image = []
    for img in image_ids:
        cs = {lvis.contiguous(int(a["category_id"])) for a in lvis.anns_by_image.get(img, [])}
        cats_per_image.append(cs)
        for c in cs:
            counts[c] += 1
    f = counts / max(len(image_ids), 1)
    with np.errstate(divide="ignore"):
        r_cat = np.maximum(1.0, np.sqrt(threshold / f))
    return np.asarray([max((r_cat[c] for c in cs), default=1.0) for cs in cats_per_image])


def _position_seed(seed: int, position: int) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}:{position}".encode(), digest_size=8).digest(), "little")


class LVISDetection(Dataset):
    """LVIS images and targets for torchvision detectors.

    ``__getitem__(i)`` or ``__getitem__((position, i))`` (from ``TrainingSampler``) returns
    ``(image [3, H, W] float in [0, 1], target)`` with ``boxes`` (xyxy, float), ``labels`` (1..C),
    ``masks`` [N, H, W] uint8 (when ``with_masks``), ``image_id`` and ``image_labels`` (bool [C]:
    categories verified present or absent in the image, for the paper's Section 4.2 option). In
    training, a horizontal flip is drawn from (seed, position), so a resumed run sees the same
    augmentation. Boxes with no area are dropped (as detectron2 does).
    """

    def __init__(self, lvis: LVISAnnotations, image_root: str | os.PathLike, train: bool, with_masks: bool = True,
                 filter_empty: bool = True, hflip_prob: float = 0.5, seed: int = 0, max_images: int = 0,
                 check_files: bool = True):
        self.image_root, self.train = Path(image_root), train
        self.with_masks, self.hflip_prob, self.seed = with_masks, hflip_prob, seed
        images = sorted(lvis.images, key=lambda im: im["id"])
        if train and filter_empty:
            images = [im for im in images if lvis.anns_by_image.get(im["id"])]
        if max_images:
            images = images[:max_images]
        if not images:
            raise LVISDataError(f"{lvis.path}: no {'annotated ' if train else ''}images to use")
        paths = [resolve_image_path(im, self.image_root) for im in images]
        if check_files:
            missing = [str(p) for p in paths if not p.is_file()]
            if missing:
                raise LVISDataError(f"{len(missing)} of {len(paths)} images of {lvis.path.name} are missing "
                                    f"under {self.image_root} (first: {missing[:3]}); see the README for the layout")
        # One record per image, pickled into a single byte buffer; nothing else per image is kept (not
        # the annotation file's dicts): DataLoader workers, forked on every rank, then read a numpy
        # array instead of touching (and, by reference counting, copying) millions of Python objects.
        # Ground-truth polygons are packed only when the masks are used (training Mask R-CNN).
        self.source = str(lvis.path)
        self.cat_ids = list(lvis.cat_ids)
        self._cat_index = dict(lvis._cat_index)
        self.num_classes = lvis.num_classes
        self._ids = np.asarray([int(im["id"]) for im in images], np.int64)
        blobs = [np.frombuffer(pickle.dumps(
            {"id": int(im["id"]), "height": im.get("height"), "width": im.get("width"), "path": str(p),
             "neg": [int(c) for c in im.get("neg_category_ids", [])],
             "anns": [{"bbox": a["bbox"], "category_id": int(a["category_id"]),
                       "segmentation": a.get("segmentation") if with_masks else None}
                      for a in lvis.anns_by_image.get(im["id"], [])]}, protocol=pickle.HIGHEST_PROTOCOL), dtype=np.uint8)
                 for im, p in zip(images, paths)]
        self._ends = np.cumsum([len(b) for b in blobs])
        self._buffer = np.concatenate(blobs)

    def __len__(self):
        return len(self._ends)

    def image_ids(self) -> list:
        return self._ids.tolist()

    def record(self, i: int) -> dict:
        """Image ``i``'s record: id, height, width, path, neg (category ids), anns (bbox,
        category_id, segmentation or None)."""
        start = int(self._ends[i - 1]) if i > 0 else 0
        return pickle.loads(self._buffer[start:int(self._ends[i])].tobytes())

    @staticmethod
    def _load_image(path: str) -> torch.Tensor:
        from PIL import Image
        try:
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
        except OSError as e:
            raise LVISDataError(f"{path}: unreadable image ({e})") from None
        return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255)

    def __getitem__(self, item):
        position, i = item if isinstance(item, tuple) else (None, item)
        rec = self.record(i)
        image = self._load_image(rec["path"])
        h, w = image.shape[-2:]
        if (rec["height"], rec["width"]) not in ((h, w), (None, None)):
            raise LVISDataError(f"{rec['path']}: image is {w}x{h}, the annotation says {rec['width']}x{rec['height']}")
        anns = rec["anns"]
        boxes = np.asarray([a["bbox"] for a in anns], np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        keep = np.nonzero((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]))[0]
        labels = np.asarray([self._cat_index[anns[k]["category_id"]] + 1 for k in keep], np.int64)
        target = {"boxes": torch.from_numpy(boxes[keep]), "labels": torch.from_numpy(labels.reshape(-1)),
                  "image_id": rec["id"]}
        if self.with_masks:
            target["masks"] = torch.from_numpy(_masks([anns[k] for k in keep], h, w))
        verified = {self._cat_index[a["category_id"]] for a in anns}
        verified |= {self._cat_index[c] for c in rec["neg"] if c in self._cat_index}
        image_labels = torch.zeros(self.num_classes, dtype=torch.bool)
        image_labels[sorted(verified)] = True
        target["image_labels"] = image_labels
        if self.train and self.hflip_prob > 0:
            rng = np.random.default_rng(_position_seed(self.seed, position if position is not None else i))
            if rng.random() < self.hflip_prob:
                image = image.flip(-1)
                b = target["boxes"]
                target["boxes"] = torch.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], dim=1)
                if "masks" in target:
                    target["masks"] = target["masks"].flip(-1)
        return image, target


def _masks(anns: list, h: int, w: int) -> np.ndarray:
    """Polygons (or RLE) -> [N, H, W] uint8 through pycocotools (parts of a polygon are merged)."""
    from pycocotools import mask as mask_utils
    out = np.zeros((len(anns), h, w), np.uint8)
    for k, a in enumerate(anns):
        seg = a.get("segmentation")
        if not seg:
            x, y, bw, bh = a["bbox"]
            seg = [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]]
        if isinstance(seg, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
        elif isinstance(seg.get("counts"), list):
            rle = mask_utils.frPyObjects(seg, h, w)
        else:
            rle = seg
        out[k] = mask_utils.decode(rle)
    return out


def collate(batch):
    return tuple(zip(*batch))


class TrainingSampler(Sampler):
    """An endless stream of ``(position, index)`` for iteration-based training, shared by all ranks.

    Each pass over the data ("epoch" e) draws, from a generator seeded with (seed, e), a stochastic
    rounding of the repeat factors (``floor(r) + Bernoulli(frac(r))`` copies per image, as
    detectron2's ``RepeatFactorTrainingSampler``) and a permutation; rank k of W takes positions
    k, k + W, ... of the global stream. ``start`` skips the first ``start`` positions of *this
    rank's* stream (resume). Factors of 1 give plain shuffled epochs.
    """

    def __init__(self, factors, seed: int = 0, rank: int = 0, world_size: int = 1, start: int = 0,
                 shuffle: bool = True):
        self.factors = np.asarray(factors, np.float64)
        if (self.factors < 1).any() or not np.isfinite(self.factors).all():
            raise ValueError("repeat factors must be finite and >= 1")
        self.seed, self.rank, self.world_size, self.start, self.shuffle = seed, rank, world_size, start, shuffle

    def _epoch(self, e: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, e])
        whole = np.floor(self.factors)
        reps = whole + (rng.random(len(self.factors)) < self.factors - whole)
        idx = np.repeat(np.arange(len(self.factors)), reps.astype(np.int64))
        return rng.permutation(idx) if self.shuffle else idx

    def __iter__(self):
        pos, e, skip = 0, 0, self.start * self.world_size   # global positions to skip
        while True:
            idx = self._epoch(e)
            if skip >= len(idx):
                skip -= len(idx)
                pos += len(idx)
                e += 1
                continue
            for g in range(skip, len(idx)):
                if (pos + g) % self.world_size == self.rank:
                    yield (pos + g, int(idx[g]))
            skip = 0
            pos += len(idx)
            e += 1

    def expected_epoch_length(self) -> float:
        return float(self.factors.sum())
