"""CelebA-Spoof on disk -> samples -> tensors: the dataset, its data report, geometric targets.

Layout (official release)::

    <root>/Data/{train,test}/<subject>/{live,spoof}/<image>.jpg
    <root>/Data/.../<image>_BB.txt                  face box (see bbox.py)
    <root>/Data/.../<image>_depth.png               optional: depth map (live), ours, see README
    <root>/Data/.../<image>_reflect.png             optional: reflection map (spoof), ours
    <root>/metas/intra_test/{train,test}_label.json 44-integer label vectors (see labels.py)
    <root>/metas/protocol1/..., metas/protocol2/... the cross-protocol lists

Geometric targets (AENet's G^d, G^r; paper Sec. 4): a live face's depth map comes from a 3-D
reconstruction (PRNet) and its reflection map is 0; a spoof's reflection map comes from a
reflection-separation network and its depth map is 0. The maps are not shipped with the dataset.
We read ``<image>_depth.png`` / ``<image>_reflect.png`` (beside the image, or under
``--maps-root`` mirroring ``Data/``). A map of the image's size is cropped with the image's face
box; any other size is taken as already cropped. Where a live face has no depth map (or a spoof no
reflection map) that sample's term is masked out: the model is never trained towards an invented
target. The zero targets that the paper defines (spoof depth, live reflection) are used without a
file unless ``--no-geo-known-zeros``.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms

from celeba_spoof import bbox as bb
from celeba_spoof.labels import (
    ENVIRONMENTS,
    ILLUMINATIONS,
    SPOOF_TYPES,
    Label,
    LabelError,
    find_label_file,
    load_label_file,
    split_val_subjects,
    subject_of,
)

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MAP_SUFFIXES = ("_BB.txt", "_depth.png", "_reflect.png")


@dataclass
class Sample:
    rel: str            # path relative to the dataset root (the label file's key)
    path: Path          # the image
    label: Label
    box: bb.BoxFile     # the parsed _BB.txt
    depth: Path | None = None    # precomputed depth map, when present
    reflect: Path | None = None  # precomputed reflection map, when present


@dataclass
class DataReport:
    """Counts for one list: what was listed, found, broken. ``to_dict`` is what check_data prints."""

    listed: int = 0
    images: int = 0
    live: int = 0
    spoof: int = 0
    missing_image: int = 0
    bad_label: int = 0
    empty_bbox: int = 0
    malformed_bbox: int = 0
    negative_bbox: int = 0
    missing_bbox_file: int = 0
    depth_maps: int = 0
    reflect_maps: int = 0
    per_spoof_type: Counter = field(default_factory=Counter)
    per_illumination: Counter = field(default_factory=Counter)
    per_environment: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)

    def note(self, kind: str, rel: str, limit: int = 5) -> None:
        ex = self.examples.setdefault(kind, [])
        if len(ex) < limit:
            ex.append(rel)

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if not isinstance(v, (Counter, dict))}
        d["per_spoof_type"] = {SPOOF_TYPES[k] if k >= 0 else "unknown": v
                               for k, v in sorted(self.per_spoof_type.items())}
        d["per_illumination"] = {ILLUMINATIONS[k] if k >= 0 else "unknown": v
                                 for k, v in sorted(self.per_illumination.items())}
        d["per_environment"] = {ENVIRONMENTS[k] if k >= 0 else "unknown": v
                                for k, v in sorted(self.per_environment.items())}
        d["examples"] = self.examples
        return d

    def summary(self) -> str:
        broken = {k: getattr(self, k) for k in ("missing_image", "bad_label", "empty_bbox",
                                                 "malformed_bbox", "negative_bbox", "missing_bbox_file")
                  if getattr(self, k)}
        return (f"{self.images}/{self.listed} images ({self.live} live, {self.spoof} spoof), "
                f"maps: {self.depth_maps} depth, {self.reflect_maps} reflection"
                + (f"; problems: {broken}" if broken else ""))


def map_paths(image: Path, root: Path, maps_root: Path | None) -> tuple[Path, Path]:
    """Where the depth / reflection maps of ``image`` would be."""
    base = image
    if maps_root is not None:
        base = Path(maps_root) / image.relative_to(root)
    return base.with_name(base.stem + "_depth.png"), base.with_name(base.stem + "_reflect.png")


def collect(root: str | Path, labels: dict, bad: list | None = None, maps_root=None) -> tuple[list, DataReport]:
    """Turn ``{rel: Label}`` into samples whose image exists, reading every box file and probing
    for maps; everything broken is counted (and the first few names kept) in the report."""
    root = Path(root)
    report = DataReport(listed=len(labels) + len(bad or []), bad_label=len(bad or []))
    for rel, _ in (bad or [])[:5]:
        report.note("bad_label", rel)
    samples = []
    for rel in sorted(labels):
        lab = labels[rel]
        path = root / rel
        if not path.is_file():
            report.missing_image += 1
            report.note("missing_image", rel)
            continue
        box = bb.read_box_file(bb.bbox_path(path))
        if box.status == bb.EMPTY:
            report.empty_bbox += 1
            report.note("empty_bbox", rel)
        elif box.status == bb.MALFORMED:
            report.malformed_bbox += 1
            report.note("malformed_bbox", rel)
        elif box.status == bb.MISSING:
            report.missing_bbox_file += 1
            report.note("missing_bbox_file", rel)
        elif box.negative:
            report.negative_bbox += 1
            report.note("negative_bbox", rel)
        dpath, rpath = map_paths(path, root, maps_root)
        depth = dpath if dpath.is_file() else None
        reflect = rpath if rpath.is_file() else None
        report.depth_maps += depth is not None
        report.reflect_maps += reflect is not None
        report.images += 1
        report.live += lab.is_spoof == 0
        report.spoof += lab.is_spoof == 1
        report.per_spoof_type[lab.spoof_type] += 1
        report.per_illumination[lab.illumination] += 1
        report.per_environment[lab.environment] += 1
        samples.append(Sample(rel, path, lab, box, depth, reflect))
    return samples, report


def load_split(root, protocol: str, split: str, maps_root=None, val_fraction: float = 0.0,
               val_seed: int = 0) -> dict:
    """The samples of a protocol's ``train`` or ``test`` list. For ``train`` with
    ``val_fraction > 0`` a subject-disjoint validation part is split off:
    returns ``{"train": [...], "val": [...], "report": DataReport, "file": Path}``."""
    root = Path(root)
    path = find_label_file(root, protocol, split)
    labels, bad = load_label_file(path)
    if not labels:
        raise LabelError(f"{path}: no usable label entries ({len(bad)} bad; first: "
                         f"{bad[0][1] if bad else 'the file is empty'})")
    samples, report = collect(root, labels, bad, maps_root)
    if not samples:
        first = report.examples.get("missing_image", ["?"])[0]
        raise FileNotFoundError(f"{path}: none of the {len(labels)} listed images exists under {root} "
                                f"(first: {root / first}); is --data-root the folder holding Data/ and metas/?")
    out = {"report": report, "file": path}
    if split == "train" and val_fraction > 0:
        held = split_val_subjects([s.rel for s in samples], val_fraction, val_seed)
        out["val"] = [s for s in samples if subject_of(s.rel) in held]
        out["train"] = [s for s in samples if subject_of(s.rel) not in held]
    else:
        out[split] = samples
    return out


def scan_images(root: str | Path) -> list[str]:
    """Every image under ``<root>/Data`` as a root-relative posix path (maps excluded)."""
    root = Path(root)
    found = []
    for dirpath, _, files in os.walk(root / "Data"):
        for f in files:
            if f.lower().endswith(IMAGE_EXTS) and not f.endswith(MAP_SUFFIXES):
                found.append(Path(dirpath, f).relative_to(root).as_posix())
    return sorted(found)


# --------------------------------------------------------------------------------------------
# images and targets


def load_crop(path: Path, box: bb.BoxFile, negative: str = "clamp") -> tuple[Image.Image, tuple, str, tuple]:
    """Open an image as RGB and crop its face box (official scaling; whole image when unusable).
    Returns ``(crop, (x1, y1, x2, y2), status, (full_w, full_h))``."""
    try:
        with Image.open(path) as im:
            img = im.convert("RGB")
    except (OSError, ValueError) as e:
        raise OSError(f"{path}: cannot read image: {e}") from None
    full = img.size
    xyxy, status = bb.crop_box(box, img.width, img.height, negative)
    if xyxy != (0, 0, img.width, img.height):
        img = img.crop(xyxy)
    return img, xyxy, status, full


def load_map(path: Path, image_size: tuple, xyxy: tuple, size: int, channels: int) -> torch.Tensor:
    """A depth (1 channel) or reflection (3 channels) map, cropped like the image when it has the
    image's size, resized to ``size x size``, scaled to [0, 1] (as ToTensor does)."""
    try:
        with Image.open(path) as im:
            m = im.convert("L" if channels == 1 else "RGB")
    except (OSError, ValueError) as e:
        raise OSError(f"{path}: cannot read map: {e}") from None
    if m.size == tuple(image_size) and tuple(xyxy) != (0, 0, *image_size):
        m = m.crop(xyxy)
    m = m.resize((size, size), Image.BILINEAR)
    return transforms.functional.to_tensor(m)


def build_transform(input_size: int, train: bool, jitter=(0.4, 0.4, 0.4, 0.0), normalize: str = "none"):
    """Official inference: resize to ``input_size`` (both sides) -> ToTensor, no mean/std.
    Training adds ColorJitter (the paper's augmentation)."""
    t = [transforms.Resize((input_size, input_size))]
    if train and any(jitter):
        t.append(transforms.ColorJitter(*jitter))
    t.append(transforms.ToTensor())
    if normalize == "imagenet":
        t.append(transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]))
    elif normalize != "none":
        raise ValueError(f"normalize must be 'none' or 'imagenet', got {normalize!r}")
    return transforms.Compose(t)


class SpoofDataset(Dataset):
    """Samples -> ``{image, live, attribute, attack, light, env, depth, reflect, depth_mask,
    reflect_mask, index}``. Unknown auxiliary labels are -1 (their loss terms skip them)."""

    def __init__(self, samples: list, input_size: int = 224, train: bool = False, geo_size: int = 14,
                 jitter=(0.4, 0.4, 0.4, 0.0), normalize: str = "none", negative_bbox: str = "clamp",
                 geo_known_zeros: bool = True, load_maps: bool = True):
        self.samples = list(samples)
        self.transform = build_transform(input_size, train, jitter, normalize)
        self.geo_size = geo_size
        self.negative_bbox = negative_bbox
        self.geo_known_zeros = geo_known_zeros
        self.load_maps = load_maps

    def __len__(self):
        return len(self.samples)

    def _geo(self, s: Sample, full_size, xyxy):
        g = self.geo_size
        depth, reflect = torch.zeros(1, g, g), torch.zeros(3, g, g)
        dmask = rmask = 0.0
        if self.load_maps:
            spoof = s.label.is_spoof == 1
            if s.depth is not None:
                depth, dmask = load_map(s.depth, full_size, xyxy, g, 1), 1.0
            elif spoof and self.geo_known_zeros:
                dmask = 1.0  # the paper's target: a spoof has no depth
            if s.reflect is not None:
                reflect, rmask = load_map(s.reflect, full_size, xyxy, g, 3), 1.0
            elif not spoof and self.geo_known_zeros:
                rmask = 1.0  # the paper's target: a live face has no reflection
        return depth, reflect, dmask, rmask

    def __getitem__(self, i):
        s = self.samples[i]
        img, xyxy, _, full_size = load_crop(s.path, s.box, self.negative_bbox)
        depth, reflect, dmask, rmask = self._geo(s, full_size, xyxy)
        lab = s.label
        return {
            "image": self.transform(img),
            "live": torch.tensor(lab.is_spoof, dtype=torch.long),
            "attribute": torch.tensor(lab.attributes, dtype=torch.float32),
            "attack": torch.tensor(lab.spoof_type, dtype=torch.long),
            "light": torch.tensor(lab.illumination, dtype=torch.long),
            "env": torch.tensor(lab.environment, dtype=torch.long),
            "depth": depth, "reflect": reflect,
            "depth_mask": torch.tensor(dmask), "reflect_mask": torch.tensor(rmask),
            "index": torch.tensor(i, dtype=torch.long),
        }


def image_size_report(samples: list, negative: str = "clamp") -> dict:
    """Open every image header (no decoding) to count the boxes that fall back to the whole image
    after the official scaling (``degenerate_bbox``) and the unreadable images."""
    degenerate, unreadable, ex_d, ex_u = 0, 0, [], []
    for s in samples:
        try:
            with Image.open(s.path) as im:
                w, h = im.size
        except (OSError, ValueError):
            unreadable += 1
            if len(ex_u) < 5:
                ex_u.append(s.rel)
            continue
        if s.box.status == bb.OK and bb.crop_box(s.box, w, h, negative)[1] == bb.DEGENERATE:
            degenerate += 1
            if len(ex_d) < 5:
                ex_d.append(s.rel)
    return {"degenerate_bbox": degenerate, "unreadable_image": unreadable,
            "examples": {"degenerate_bbox": ex_d, "unreadable_image": ex_u}}


def labels_array(samples: list) -> np.ndarray:
    return np.array([s.label.is_spoof for s in samples], dtype=np.int64)
