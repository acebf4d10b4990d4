"""Clothes boxes: from human parsing, from a box file, or the fixed torso crop.

The clothes branch sees a gallery image through its clothes patch. BC-Net cuts it with a clothes
detector (Faster R-CNN, `detector.py`) trained on boxes derived from a human parser's output: here
the tight box around the LIP clothes labels of `parsing/<image>.png`. Without a detector (the "no
clothes detector" row), the patch is a fixed crop of the person box.

Box files (`clothes_boxes.json`) map root-relative image paths to [x1, y1, x2, y2] in pixels of
the image: `{"source": "detector" | "parsing" | "fixed" | "file", "boxes": {path: box}, ...}`;
the detector's file also lists `fallback` images (no detection: the fixed crop was used) and
`scores`.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from cocas_reid.data import DataError, image_path
from shared import run

__all__ = ["LIP_CLOTHES", "FIXED_BOX", "parsing_path", "box_from_labels", "parsing_boxes", "fixed_boxes",
           "read_box_file", "write_box_file", "newest_box_file", "boxes_for"]

# LIP: 5 upper clothes, 6 dress, 7 coat, 9 pants, 10 jumpsuits, 12 skirt
LIP_CLOTHES = (5, 6, 7, 9, 10, 12)
FIXED_BOX = (0.0, 0.15, 1.0, 0.8)  # x1, y1, x2, y2 as fractions of the person box: shoulders to knees
BOX_FILE = "clothes_boxes.json"


def parsing_path(root, rel: str) -> Path:
    """`parsing/<image>.png`: the image path without its leading `images/`, suffix .png."""
    parts = Path(rel).parts
    tail = Path(*parts[1:]) if len(parts) > 1 and parts[0] == "images" else Path(rel)
    return Path(root) / "parsing" / tail.with_suffix(".png")


def box_from_labels(labels: np.ndarray, ids=LIP_CLOTHES) -> list | None:
    """The tight box [x1, y1, x2, y2) around the pixels whose label is a clothes id (None if none)."""
    mask = np.isin(labels, ids)
    if not mask.any():
        return None
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def parsing_boxes(root, files, ids=LIP_CLOTHES, required: bool = True) -> dict:
    """{image: box} from the parsing PNGs; images without a PNG or without clothes pixels are left
    out (or raise, naming the file, when `required`)."""
    out = {}
    for rel in files:
        p = parsing_path(root, rel)
        if not p.is_file():
            if required:
                raise DataError(f"{p}: parsing map of {rel} not found (needed for --clothes-source parsing)")
            continue
        with Image.open(p) as im:
            box = box_from_labels(np.asarray(im), ids)
        if box is None:
            if required:
                raise DataError(f"{p}: no clothes label {list(ids)} in the parsing map of {rel}")
            continue
        out[rel] = box
    return out


def fixed_boxes(root, files, variant: str = "raw", frac=FIXED_BOX) -> dict:
    """{image: the fixed crop} (reads each image's size from its header only)."""
    out = {}
    for rel in files:
        with Image.open(image_path(root, rel, variant)) as im:
            w, h = im.size
        out[rel] = [frac[0] * w, frac[1] * h, frac[2] * w, frac[3] * h]
    return out


def read_box_file(path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: box file not found") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    boxes = data.get("boxes") if isinstance(data, dict) else None
    if not isinstance(boxes, dict):
        raise DataError(f"{path}: expected {{\"boxes\": {{image_path: [x1, y1, x2, y2]}}}}")
    for k, b in boxes.items():
        if not (isinstance(b, list) and len(b) == 4 and all(isinstance(v, (int, float)) for v in b)) or b[2] <= b[0] \
                or b[3] <= b[1]:
            raise DataError(f"{path}: box of {k!r} is {b!r}, expected [x1, y1, x2, y2] with x2 > x1 and y2 > y1")
    return data


def write_box_file(path, boxes: dict, source: str, **extra) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"source": source, **extra, "boxes": boxes}, indent=0))
    os.replace(tmp, path)
    return path


def newest_box_file(args) -> Path | None:
    """`clothes_boxes.json` of the newest detector run of this config (`<config>-detector`)."""
    base = run.run_root("cocas_reid", run.run_name(args, "detector"), args.output_dir)
    for d in sorted((p for p in base.glob("*") if p.is_dir()), reverse=True) if base.is_dir() else []:
        if (d / BOX_FILE).is_file():
            return d / BOX_FILE
    return None


def boxes_for(files, source: str, root, variant: str = "raw", box_file=None, ids=LIP_CLOTHES,
              frac=FIXED_BOX) -> np.ndarray:
    """N x 4 clothes boxes of `files` (pixels) from `source`: detector / file (a box file that
    must hold every image), parsing or fixed."""
    if source == "fixed":
        b = fixed_boxes(root, files, variant, frac)
    elif source == "parsing":
        b = parsing_boxes(root, files, ids)
    elif source in ("detector", "file"):
        if box_file is None:
            raise DataError("no clothes box file: run detect_clothes.py (make cocas_reid-train runs it) or pass "
                            "--clothes-boxes FILE, or use --clothes-source parsing|fixed")
        b = read_box_file(box_file)["boxes"]
        missing = [f for f in files if f not in b]
        if missing:
            raise DataError(f"{box_file}: no box for {len(missing)} of {len(files)} images (first: {missing[0]})")
    else:
        raise ValueError(f"--clothes-source {source!r}: expected detector, parsing or fixed")
    return np.asarray([b[f] for f in files], dtype=np.float64)
