"""Write the embedded toy dataset in LVIS v1's on-disk format: drawn shapes, long-tailed classes.

``python toy.py [--out data/toy/eql] [--seed 0] [--train-images 800] [--val-images 200] [--force]``
(``make eql-data`` runs it from ``eql/``; the default ``--out`` is ``<repo>/data/toy/eql`` wherever it
is run from). Deterministic from the seed (one ``numpy.random.Generator``); a second run with the
same settings finds ``manifest.json`` and writes nothing.

Files written under ``--out`` (the layout of the real data, see README):

* ``lvis/lvis_v1_train.json``, ``lvis/lvis_v1_val.json`` -- LVIS v1 annotation files: images with
  ``coco_url``, ``height``, ``width``, ``neg_category_ids``, ``not_exhaustive_category_ids``;
  annotations with polygon ``segmentation``, ``bbox`` (x, y, w, h) and ``area`` (the mask area, as
  LVIS); categories with ``name``, ``synset``, ``def``, ``image_count``, ``instance_count`` and
  ``frequency`` (r / c / f from the training image counts with LVIS's rule: 1-10, 11-100, > 100).
* ``coco/train2017/<id>.jpg``, ``coco/val2017/<id>.jpg`` -- the images (about 128 px).
* ``manifest.json`` -- the settings and counts (written last).

24 categories = 6 shapes (circle, square, triangle, diamond, cross, star) x 4 colours, rotated
and sized 12-44 px, on a noisy gradient background with grey distractors. Training frequencies
follow a Zipf law (exponent 1.6 over a random order of the categories): a few frequent classes,
about half common, several rare ones with under ten images. The validation split is drawn from a
flatter law (exponent 0.5) so that every class, rare ones included, is evaluated. Federated
annotation as LVIS: about 15 % of images miss one instance of a category (listed in
``not_exhaustive_category_ids``), about 15 % hold an unannotated object of a category that is in
neither list, and each image verifies 2-6 absent categories (``neg_category_ids``).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "data" / "toy" / "eql"
FORMAT_VERSION = 1
SHAPES = ("circle", "square", "triangle", "diamond", "cross", "star")
COLOURS = {"red": (210, 40, 40), "green": (40, 170, 60), "blue": (40, 70, 210), "yellow": (220, 200, 40)}
SIZES = ((128, 128), (144, 112), (112, 144), (128, 160), (160, 128))
MANIFEST = "manifest.json"


def _settings(seed, train_images, val_images):
    return {"generator": "eql.toy", "format_version": FORMAT_VERSION, "seed": int(seed),
            "train_images": int(train_images), "val_images": int(val_images)}


def _polygon(shape: str, cx: float, cy: float, size: float, angle: float) -> np.ndarray:
    """Vertices [K, 2] of a shape of diameter ~size centred at (cx, cy), rotated by angle."""
    r = size / 2
    if shape == "circle":
        t = np.linspace(0, 2 * np.pi, 20, endpoint=False)
        pts = np.stack([np.cos(t), np.sin(t)], 1) * r
    elif shape == "square":
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * r * 0.8
    elif shape == "triangle":
        t = np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        pts = np.stack([np.cos(t), np.sin(t)], 1) * r
    elif shape == "diamond":
        pts = np.array([[0, -1], [0.55, 0], [0, 1], [-0.55, 0]]) * r
    elif shape == "cross":
        a, b = 1.0, 0.33
        pts = np.array([[-b, -a], [b, -a], [b, -b], [a, -b], [a, b], [b, b], [b, a], [-b, a], [-b, b], [-a, b],
                        [-a, -b], [-b, -b]]) * r
    elif shape == "star":
        t = -np.pi / 2 + np.arange(10) * np.pi / 5
        rad = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        pts = np.stack([np.cos(t) * rad, np.sin(t) * rad], 1) * r
    else:
        raise ValueError(shape)
    c, s = math.cos(angle), math.sin(angle)
    return pts @ np.array([[c, s], [-s, c]]) + [cx, cy]


def _categories(rng):
    cats = []
    for shape in SHAPES:
        for colour in COLOURS:
            name = f"{colour}_{shape}"
            cats.append({"name": name, "synset": f"{name}.n.01", "synonyms": [name],
                         "def": f"a {colour} {shape} drawn on a noisy background", "shape": shape, "colour": colour})
    order = rng.permutation(len(cats))                      # which classes are frequent: random
    for rank, j in enumerate(order):
        cats[j]["rank"] = int(rank)
    for i, c in enumerate(cats):
        c["id"] = i + 1
    return cats


def _background(rng, w, h):
    base = rng.uniform(90, 170, 3)
    gx, gy = rng.uniform(-40, 40, 3), rng.uniform(-40, 40, 3)
    xs, ys = np.meshgrid(np.linspace(-0.5, 0.5, w), np.linspace(-0.5, 0.5, h))
    img = base + xs[..., None] * gx + ys[..., None] * gy + rng.normal(0, 10, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _draw_image(rng, cats, probs, w, h, aid0, img_id, split):
    """One image: (PIL image, annotations, neg ids, not-exhaustive ids, category ids present)."""
    from PIL import Image, ImageDraw
    from pycocotools import mask as mask_utils

    img = Image.fromarray(_background(rng, w, h))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(0, 3))):                # grey distractors (not a category)
        g = int(rng.integers(60, 200))
        pts = _polygon(str(rng.choice(["circle", "square"])), rng.uniform(0, w), rng.uniform(0, h),
                       rng.uniform(8, 30), rng.uniform(0, np.pi))
        draw.polygon([tuple(p) for p in pts], fill=(g, g, g))
    n_obj = int(rng.choice([1, 2, 3, 4], p=[0.3, 0.35, 0.25, 0.1]))
    chosen = list(rng.choice(len(cats), size=n_obj, p=probs))
    extra = None
    if rng.random() < 0.15:                                  # an unannotated object (federated: unknown)
        extra = int(rng.integers(len(cats)))
        if extra not in chosen:
            chosen.append(extra)
        else:
            extra = None
    placed, objs = [], []
    for k in chosen:
        for _ in range(30):
            size = float(np.exp(rng.uniform(np.log(12), np.log(44))))
            cx, cy = rng.uniform(size / 2, w - size / 2), rng.uniform(size / 2, h - size / 2)
            box = (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)
            if all(_iou(box, b) < 0.1 for b in placed):
                placed.append(box)
                objs.append((k, cx, cy, size))
                break
    anns, present = [], []
    for k, cx, cy, size in objs:
        c = cats[k]
        colour = np.clip(np.asarray(COLOURS[c["colour"]]) + rng.integers(-25, 26, 3), 0, 255)
        pts = _polygon(c["shape"], cx, cy, size, rng.uniform(0, 2 * np.pi))
        draw.polygon([tuple(p) for p in pts], fill=tuple(int(v) for v in colour))
        if k == extra:
            continue
        pts = np.clip(pts, 0, [w, h])
        poly = [round(float(v), 2) for v in pts.reshape(-1)]
        rle = mask_utils.merge(mask_utils.frPyObjects([poly], h, w))
        x0, y0 = pts.min(0)
        x1, y1 = pts.max(0)
        anns.append({"id": aid0 + len(anns), "image_id": img_id, "category_id": c["id"], "segmentation": [poly],
                     "bbox": [round(float(x0), 2), round(float(y0), 2), round(float(x1 - x0), 2),
                              round(float(y1 - y0), 2)], "area": float(mask_utils.area(rle))})
        present.append(c["id"])
    nel = []
    counts = {c: present.count(c) for c in set(present)}
    multi = sorted(c for c, n in counts.items() if n >= 2)
    if multi and rng.random() < 0.15:                        # one instance left unannotated
        c = int(rng.choice(multi))
        drop = [i for i, a in enumerate(anns) if a["category_id"] == c][-1]
        anns.pop(drop)
        nel.append(c)
    for i, a in enumerate(anns):
        a["id"] = aid0 + i
    pos = {a["category_id"] for a in anns}
    unknown = {cats[extra]["id"]} if extra is not None else set()
    absent = [c["id"] for c in cats if c["id"] not in pos and c["id"] not in unknown and c["id"] not in nel]
    neg = sorted(int(x) for x in rng.choice(absent, size=min(len(absent), int(rng.integers(2, 7))), replace=False))
    return img, anns, neg, sorted(nel)


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def make_toy_dataset(out: str | Path = DEFAULT_OUT, seed: int = 0, train_images: int = 800, val_images: int = 200,
                     force: bool = False, quiet: bool = False) -> Path:
    """Write the dataset (idempotent: skipped when ``manifest.json`` matches the settings)."""
    out = Path(out)
    settings = _settings(seed, train_images, val_images)
    manifest = out / MANIFEST
    if manifest.is_file() and not force:
        try:
            if json.loads(manifest.read_text()).get("settings") == settings:
                return out
        except json.JSONDecodeError:
            pass
    rng = np.random.default_rng(seed)
    cats = _categories(rng)
    ranks = np.asarray([c["rank"] for c in cats], np.float64)
    p_train = (ranks + 1) ** -1.6
    p_train /= p_train.sum()
    p_val = (ranks + 1) ** -0.5
    p_val /= p_val.sum()
    all_ids = rng.choice(np.arange(1, 1_000_000), size=train_images + val_images, replace=False)
    splits = {"train": (all_ids[:train_images], p_train, "train2017"), "val": (all_ids[train_images:], p_val, "val2017")}
    data, aid = {}, 1
    for split, (ids, probs, folder) in splits.items():
        (out / "coco" / folder).mkdir(parents=True, exist_ok=True)
        images, anns = [], []
        for img_id in sorted(int(i) for i in ids):
            w, h = SIZES[int(rng.integers(len(SIZES)))]
            img, a, neg, nel = _draw_image(rng, cats, probs, w, h, aid, img_id, split)
            aid += len(a)
            name = f"{img_id:012d}.jpg"
            img.save(out / "coco" / folder / name, quality=92)
            images.append({"id": img_id, "width": w, "height": h, "license": 1, "date_captured": "2020-01-01",
                           "coco_url": f"http://images.cocodataset.org/{folder}/{name}",
                           "flickr_url": "", "neg_category_ids": neg, "not_exhaustive_category_ids": nel})
            anns.extend(a)
        data[split] = (images, anns)
    train_anns = data["train"][1]
    image_count = {c["id"]: len({a["image_id"] for a in train_anns if a["category_id"] == c["id"]}) for c in cats}
    instance_count = {c["id"]: sum(a["category_id"] == c["id"] for a in train_anns) for c in cats}
    from eql.data import frequency_group
    categories = [{"id": c["id"], "name": c["name"], "synset": c["synset"], "synonyms": c["synonyms"], "def": c["def"],
                   "image_count": image_count[c["id"]], "instance_count": instance_count[c["id"]],
                   "frequency": frequency_group(max(image_count[c["id"]], 1))} for c in cats]
    (out / "lvis").mkdir(parents=True, exist_ok=True)
    for split, (images, anns) in data.items():
        doc = {"info": {"description": "eql toy dataset (LVIS v1 format)", "version": "1.0", "year": 2020},
               "licenses": [{"id": 1, "name": "CC0", "url": ""}], "images": images, "annotations": anns,
               "categories": categories}
        (out / "lvis" / f"lvis_v1_{split}.json").write_text(json.dumps(doc))
    groups = {g: sum(c["frequency"] == g for c in categories) for g in "rcf"}
    info = {"settings": settings, "categories": len(categories), "groups": groups,
            "train": {"images": len(data["train"][0]), "annotations": len(data["train"][1]),
                      "annotated_images": len({a["image_id"] for a in data["train"][1]})},
            "val": {"images": len(data["val"][0]), "annotations": len(data["val"][1])}}
    manifest.write_text(json.dumps(info, indent=2))
    if not quiet:
        print(f"toy LVIS dataset: {out} ({info['train']['images']} train / {info['val']['images']} val images, "
              f"{len(categories)} categories: r {groups['r']}, c {groups['c']}, f {groups['f']})")
    return out


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("eql toy dataset", add_help=add_help)
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default <repo>/data/toy/eql)")
    p.add_argument("--seed", type=int, default=0, help="generator seed")
    p.add_argument("--train-images", type=int, default=800, help="training images")
    p.add_argument("--val-images", type=int, default=200, help="validation images")
    p.add_argument("--force", action="store_true", help="rewrite even when the manifest matches")
    return p


if __name__ == "__main__":
    a = get_args_parser().parse_args()
    sys.exit(0 if make_toy_dataset(a.out, a.seed, a.train_images, a.val_images, a.force) else 1)
