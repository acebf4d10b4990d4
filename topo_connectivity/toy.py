"""Write the embedded toy data in the real on-disk formats, deterministically from a seed.

``python toy.py [--out data/toy/topo_connectivity] [--seed 0] [--force]`` (the default ``--out`` is
``<repo>/data/toy/topo_connectivity`` wherever it is run from; a second run with the same settings
finds ``manifest.json`` and writes nothing). Two datasets:

* ``imagenet/``: ImageNet's ImageFolder layout, ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG``
  (200 / 50 images of 32x32 per class), 10 classes of drawn patterns named by made-up WordNet ids:
  disc, ring, square, frame, triangle, plus, X, horizontal / vertical stripes, checkerboard. Each has
  a random foreground and background colour, size, position and stroke, a colour gradient and pixel
  noise, so colour carries no information and chance is 10 %.
* ``coco/``: COCO 2017's layout, ``annotations/instances_{train,val}2017.json`` and
  ``{train,val}2017/<id:012d>.jpg``: 128x128 (to 160x112) images holding 1-4 objects of three
  categories (ids 1 disc, 2 square, 4 triangle: non-contiguous, as COCO's) of 14-60 px on a noisy
  gradient with grey distractor strokes; ``area`` is the drawn shape's area, as COCO's polygon area.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "data" / "toy" / "topo_connectivity"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIZE = 32
CLASSES = ("disc", "ring", "square", "frame", "triangle", "plus", "xcross", "hstripes", "vstripes", "checker")
WNIDS = tuple(f"n9{k:07d}" for k in range(1, len(CLASSES) + 1))
DET_CATEGORIES = ((1, "disc"), (2, "square"), (4, "triangle"))
DET_SIZES = ((128, 128), (160, 112), (112, 160), (144, 128))


def _colours(rng: np.random.Generator):
    while True:
        fg, bg = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        if np.abs(fg.astype(int) - bg.astype(int)).sum() > 200:
            return tuple(int(v) for v in fg), tuple(int(v) for v in bg)


def _finish(img: Image.Image, rng: np.random.Generator, noise: float) -> Image.Image:
    a = np.asarray(img, dtype=np.float32)
    h, w = a.shape[:2]
    gx, gy = rng.normal(0, 30, 2)
    ramp = np.linspace(-0.5, 0.5, w)[None, :] * gx + np.linspace(-0.5, 0.5, h)[:, None] * gy
    a = a + ramp[..., None] + rng.normal(0, noise, a.shape)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def draw_pattern(rng: np.random.Generator, cls: int) -> Image.Image:
    """One SIZE x SIZE image of class `cls` (see the module docstring)."""
    fg, bg = _colours(rng)
    img = Image.new("RGB", (SIZE, SIZE), bg)
    d = ImageDraw.Draw(img)
    r = rng.uniform(0.4, 0.8) * SIZE / 2
    cx, cy = rng.uniform(r, SIZE - r, 2)
    w = int(rng.integers(2, 4))
    box = [cx - r, cy - r, cx + r, cy + r]
    name = CLASSES[cls]
    if name == "disc":
        d.ellipse(box, fill=fg)
    elif name == "ring":
        d.ellipse(box, outline=fg, width=w)
    elif name == "square":
        d.rectangle(box, fill=fg)
    elif name == "frame":
        d.rectangle(box, outline=fg, width=w)
    elif name == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    elif name == "plus":
        d.rectangle([cx - w, cy - r, cx + w, cy + r], fill=fg)
        d.rectangle([cx - r, cy - w, cx + r, cy + w], fill=fg)
    elif name == "xcross":
        d.line([(cx - r, cy - r), (cx + r, cy + r)], fill=fg, width=w + 1)
        d.line([(cx - r, cy + r), (cx + r, cy - r)], fill=fg, width=w + 1)
    elif name in ("hstripes", "vstripes"):
        period = int(rng.integers(5, 9))
        for p in range(-period + int(rng.integers(0, period)), SIZE, period):
            rect = [0, p, SIZE, p + period // 2 - 1] if name == "hstripes" else [p, 0, p + period // 2 - 1, SIZE]
            d.rectangle(rect, fill=fg)
    else:  # checker
        cell = int(rng.integers(4, 8))
        ox, oy = (int(v) for v in rng.integers(0, cell, 2))
        for i in range(-1, SIZE // cell + 2):
            for j in range(-1, SIZE // cell + 2):
                if (i + j) % 2 == 0:
                    d.rectangle([i * cell + ox, j * cell + oy, i * cell + ox + cell - 1, j * cell + oy + cell - 1],
                                fill=fg)
    return _finish(img, rng, 12.0)


def _write_imagenet(out: Path, rng: np.random.Generator, train_per_class: int, val_per_class: int) -> dict:
    counts = {}
    for split, n in (("train", train_per_class), ("val", val_per_class)):
        for k, wnid in enumerate(WNIDS):
            folder = out / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.glob("*.JPEG"):
                old.unlink()
            for i in range(n):
                draw_pattern(rng, k).save(folder / f"{wnid}_{split}_{i:05d}.JPEG", quality=92)
        counts[split] = n * len(WNIDS)
    return counts


def _shape_area(name: str, s: float) -> float:
    return {"disc": np.pi * s * s / 4, "square": s * s, "triangle": s * s / 2}[name]


def draw_scene(rng: np.random.Generator, image_id: int):
    """(image, annotations) of one detection scene; boxes are the shapes' extents (x, y, w, h)."""
    w_img, h_img = DET_SIZES[int(rng.integers(len(DET_SIZES)))]
    bg = tuple(int(v) for v in rng.integers(40, 216, 3))
    img = Image.new("RGB", (w_img, h_img), bg)
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(0, 4))):  # grey distractor strokes
        x0, y0, x1, y1 = (float(v) for v in rng.uniform(0, min(w_img, h_img), 4))
        g = int(rng.integers(0, 256))
        d.line([(x0, y0), (x1, y1)], fill=(g, g, g), width=int(rng.integers(1, 4)))
    anns, placed = [], []
    for _ in range(int(rng.integers(1, 5))):
        for _try in range(20):
            s = float(rng.uniform(14, 60))
            x, y = float(rng.uniform(0, w_img - s)), float(rng.uniform(0, h_img - s))
            if all(x + s <= a or a + b <= x or y + s <= c or c + e <= y for a, c, b, e in placed):
                break
        else:
            continue
        placed.append((x, y, s, s))
        k = int(rng.integers(len(DET_CATEGORIES)))
        cat_id, name = DET_CATEGORIES[k]
        while True:
            fg = tuple(int(v) for v in rng.integers(0, 256, 3))
            if np.abs(np.array(fg) - np.array(bg)).sum() > 150:
                break
        if name == "disc":
            d.ellipse([x, y, x + s, y + s], fill=fg)
        elif name == "square":
            d.rectangle([x, y, x + s, y + s], fill=fg)
        else:
            d.polygon([(x + s / 2, y), (x, y + s), (x + s, y + s)], fill=fg)
        anns.append({"image_id": image_id, "category_id": cat_id, "bbox": [round(x, 2), round(y, 2), round(s, 2),
                     round(s, 2)], "area": round(_shape_area(name, s), 2), "iscrowd": 0})
    return _finish(img, rng, 10.0), anns


def _write_coco(out: Path, rng: np.random.Generator, train_images: int, val_images: int) -> dict:
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    cats = [{"id": c, "name": n, "supercategory": "shape"} for c, n in DET_CATEGORIES]
    counts, ann_id, image_id = {}, 1, 1
    for split, n in (("train2017", train_images), ("val2017", val_images)):
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.jpg"):
            old.unlink()
        images, anns = [], []
        for _ in range(n):
            img, objs = draw_scene(rng, image_id)
            name = f"{image_id:012d}.jpg"
            img.save(folder / name, quality=92)
            images.append({"id": image_id, "file_name": name, "width": img.width, "height": img.height})
            for a in objs:
                anns.append({"id": ann_id, **a})
                ann_id += 1
            image_id += 1
        data = {"info": {"description": "topo_connectivity toy COCO set"}, "licenses": [], "images": images,
                "annotations": anns, "categories": cats}
        (out / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
        counts[split] = {"images": n, "annotations": len(anns)}
    return counts


def make_toy_dataset(out=DEFAULT_OUT, seed: int = 0, train_per_class: int = 200, val_per_class: int = 50,
                     det_train: int = 400, det_val: int = 100, force: bool = False, verbose: bool = False) -> Path:
    """Write both toy datasets under `out` (idempotent: nothing is written when manifest.json
    records the same settings)."""
    out = Path(out)
    settings = {"generator": "topo_connectivity.toy", "format_version": FORMAT_VERSION, "seed": int(seed),
                "train_per_class": int(train_per_class), "val_per_class": int(val_per_class),
                "det_train": int(det_train), "det_val": int(det_val)}
    manifest = out / MANIFEST
    if not force and manifest.is_file():
        try:
            if json.loads(manifest.read_text()).get("settings") == settings:
                return out
        except (OSError, json.JSONDecodeError):
            pass
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    manifest.unlink(missing_ok=True)
    cls_counts = _write_imagenet(out / "imagenet", np.random.default_rng([seed, 0]), train_per_class, val_per_class)
    det_counts = _write_coco(out / "coco", np.random.default_rng([seed, 1]), det_train, det_val)
    manifest.write_text(json.dumps({"settings": settings, "classes": dict(zip(WNIDS, CLASSES)),
                                    "imagenet": cls_counts, "coco": det_counts}, indent=1) + "\n")
    if verbose:
        print(f"wrote toy data under {out} in {time.time() - t0:.1f} s: imagenet {cls_counts}, coco {det_counts}")
    return out


def ensure(toy_root: str = "") -> Path:
    """The toy data folder for a run: `toy_root` as written (by `python toy.py --out ...`, with its
    own settings) when it holds a manifest, else the default set (written by rank 0 on first use)."""
    from shared import dist

    out = Path(toy_root) if toy_root else DEFAULT_OUT
    if dist.is_main() and not (toy_root and (out / MANIFEST).is_file()):
        make_toy_dataset(out)
    dist.barrier()
    return out


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser("topo_connectivity toy data", description=__doc__.split("\n")[0], add_help=add_help)
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--train-per-class", type=int, default=200, help="classification training images per class")
    p.add_argument("--val-per-class", type=int, default=50, help="classification validation images per class")
    p.add_argument("--det-train", type=int, default=400, help="detection training images")
    p.add_argument("--det-val", type=int, default=100, help="detection validation images")
    p.add_argument("--force", action="store_true", help="rewrite even when up to date")
    return p


def main(args) -> Path:
    return make_toy_dataset(args.out, args.seed, args.train_per_class, args.val_per_class, args.det_train,
                            args.det_val, args.force, verbose=True)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
    sys.exit(0)
