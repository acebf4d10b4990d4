"""Write the embedded toy dataset as a Cityscapes tree: ``python toy.py [--out DIR] [--seed 0] [--force]``.

``make cdgcnet-data`` runs it from ``cdgcnet/``; the default ``--out`` is ``<repo>/data/toy/cdgcnet``.
Deterministic from the seed (one ``numpy.random.Generator`` per image); a second run with the same
settings finds ``manifest.json`` and writes nothing.

Layout (the real one): ``leftImg8bit/{train,val,test}/<city>/<city>_<seq>_<frame>_leftImg8bit.png``
(RGB, 128 x 256), ``gtFine/{train,val}/<city>/<stem>_gtFine_labelIds.png`` (Cityscapes labelIds,
void ones included) and ``<stem>_gtFine_labelTrainIds.png``; the test split has images only. City
names contain ``_`` and ``-`` on purpose (``bad-honnef``, ``new_york``): stems are never split.

What a picture holds. A Voronoi partition into ~60 small regions, each of one of the image's 5
classes (drawn from 8 Cityscapes classes), ~4 % void (labelIds 0, 4, 5, 6, 9). Each class has
* a colour: a base colour of the class plus a **per-image shift** (std ``--colour-noise``), so that
  across images colour is only a weak cue, but inside one image all pixels of a class share it;
* a texture: every 8 x 8 cell shows one of 8 gratings (one per class); a cell of class k shows k's
  grating with probability ``--texture-reliability`` and a random one otherwise, so **one cell is
  ambiguous** while the majority over many cells of the class is not.
Pooling the cells of one class across the image (found by their shared colour) reveals the class;
a local window mixes the small regions of several classes. This is the situation class-wise
pooling is meant for (same-class pixels that agree with each other more than with their
neighbourhood); the toy does not show boundary refinement, pretrained features or scale.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from cdgcnet import labels as L

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "data" / "toy" / "cdgcnet"
FORMAT_VERSION = 4
MANIFEST = "manifest.json"
H, W, CELL = 128, 256, 8
CLASSES = (0, 1, 2, 8, 10, 11, 13, 18)  # trainIds: road sidewalk building vegetation sky person car bicycle
VOID_LABEL_IDS = (0, 4, 5, 6, 9)
CITIES = {"train": ("aachen", "bad-honnef", "new_york"), "val": ("lindau", "munster_west-2"), "test": ("berlin",)}


def _settings(args) -> dict:
    return {"generator": "cdgcnet.toy", "format_version": FORMAT_VERSION, "seed": int(args.seed),
            "train_images": int(args.train_images), "val_images": int(args.val_images),
            "test_images": int(args.test_images), "colour_noise": float(args.colour_noise),
            "texture_reliability": float(args.texture_reliability), "sites": int(args.sites),
            "classes_per_image": int(args.classes_per_image)}


def _gratings(n: int) -> np.ndarray:
    """n distinct 8 x 8 patterns in [-1, 1]: gratings of different orientation and frequency."""
    yy, xx = np.mgrid[0:CELL, 0:CELL].astype(np.float64)
    out = []
    for i in range(n):
        angle = np.pi * (i % 4) / 4
        freq = (1 + i // 4) * 2 * np.pi / CELL
        out.append(np.sign(np.sin(freq * (np.cos(angle) * xx + np.sin(angle) * yy) + 0.5)))
    return np.stack(out)


def _base_colours(rng) -> np.ndarray:
    """One base colour per class, spread in the RGB cube (fixed by the dataset seed)."""
    while True:
        c = rng.uniform(0.2, 0.8, size=(len(CLASSES), 3))
        d = np.linalg.norm(c[:, None] - c[None], axis=-1) + np.eye(len(CLASSES))
        if d.min() > 0.25:
            return c


def render(rng: np.random.Generator, base: np.ndarray, patterns: np.ndarray, colour_noise: float,
           reliability: float, sites: int, classes_per_image: int) -> tuple[np.ndarray, np.ndarray]:
    """One picture: (RGB uint8 [H, W, 3], labelIds uint8 [H, W])."""
    n = len(CLASSES)
    present = rng.choice(n, size=classes_per_image, replace=False)
    pts = rng.uniform([0, 0], [H, W], size=(sites, 2))
    site_cls = rng.choice(present, size=sites)  # index into CLASSES
    void = rng.random(sites) < 0.04
    yy, xx = np.mgrid[0:H, 0:W]
    d = (yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2
    site = d.argmin(-1)
    cls = site_cls[site]  # [H, W] class index
    is_void = void[site]
    # texture: one grating per class and picture, the class's own with probability `reliability`,
    # otherwise the grating of another class (a misleading cue shared by the whole class)
    other = (np.arange(n) + rng.integers(1, n, size=n)) % n
    tex = np.where(rng.random(n) < reliability, np.arange(n), other)
    t = np.where(is_void, rng.integers(0, n), tex[cls])
    # colour: every 8 x 8 cell draws its colour around its class's base colour (noisy, unbiased)
    cy, cx = yy // CELL, xx // CELL
    cell_noise = rng.normal(0, colour_noise, size=(H // CELL, W // CELL, 3))
    img = np.where(is_void[..., None], rng.uniform(0.1, 0.9, size=3), base[cls] + cell_noise[cy, cx])
    img = img + 0.12 * patterns[t, yy % CELL, xx % CELL][..., None] + rng.normal(0, 0.02, size=(H, W, 3))
    label_ids = L.TRAIN_TO_LABEL[np.asarray(CLASSES)[cls]]
    label_ids = np.where(is_void, rng.choice(VOID_LABEL_IDS, size=sites)[site], label_ids)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8), label_ids.astype(np.uint8)


def make_toy_dataset(out=DEFAULT_OUT, seed: int = 0, train_images: int = 120, val_images: int = 40,
                     test_images: int = 4, colour_noise: float = 0.3, texture_reliability: float = 0.6,
                     sites: int = 150, classes_per_image: int = 3, force: bool = False) -> Path:
    """Write the toy tree under `out` (skipped when its manifest matches) and return `out`."""
    args = argparse.Namespace(seed=seed, train_images=train_images, val_images=val_images, test_images=test_images,
                              colour_noise=colour_noise, texture_reliability=texture_reliability, sites=sites,
                              classes_per_image=classes_per_image)
    if not 1 <= classes_per_image <= len(CLASSES):
        raise ValueError(f"--classes-per-image {classes_per_image}: between 1 and {len(CLASSES)}")
    out = Path(out)
    settings = _settings(args)
    manifest = out / MANIFEST
    if manifest.is_file() and not force:
        try:
            if json.loads(manifest.read_text()).get("settings") == settings:
                return out
        except json.JSONDecodeError:
            pass
    base = _base_colours(np.random.default_rng([seed, 7]))
    patterns = _gratings(len(CLASSES))
    counts = {}
    for split_no, (split, n) in enumerate((("train", train_images), ("val", val_images), ("test", test_images))):
        cities = CITIES[split]
        for i in range(n):
            rng = np.random.default_rng([seed, split_no, i])
            img, lab = render(rng, base, patterns, colour_noise, texture_reliability, sites, classes_per_image)
            city = cities[i % len(cities)]
            stem = f"{city}_{i // len(cities):06d}_{19 + i:06d}"
            img_dir = out / "leftImg8bit" / split / city
            img_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(img_dir / f"{stem}_leftImg8bit.png")
            if split != "test":
                gt_dir = out / "gtFine" / split / city
                gt_dir.mkdir(parents=True, exist_ok=True)
                Image.fromarray(lab).save(gt_dir / f"{stem}_gtFine_labelIds.png")
                Image.fromarray(L.LABEL_TO_TRAIN[lab]).save(gt_dir / f"{stem}_gtFine_labelTrainIds.png")
        counts[split] = n
    manifest.write_text(json.dumps({"settings": settings, "counts": counts}, indent=1) + "\n")
    return out


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("cdgcnet toy data", add_help=add_help)
    p.add_argument("--out", default=str(DEFAULT_OUT), help="root of the Cityscapes-style tree")
    p.add_argument("--seed", type=int, default=0, help="dataset seed")
    p.add_argument("--train-images", type=int, default=120, help="training images")
    p.add_argument("--val-images", type=int, default=40, help="validation images")
    p.add_argument("--test-images", type=int, default=4, help="test images (no labels)")
    p.add_argument("--colour-noise", type=float, default=0.3, help="std of each cell's colour around its class's base colour")
    p.add_argument("--texture-reliability", type=float, default=0.6, help="probability that a class shows its own grating in a picture")
    p.add_argument("--sites", type=int, default=150, help="Voronoi regions per image")
    p.add_argument("--classes-per-image", type=int, default=3, help="classes drawn (of 8) for each picture")
    p.add_argument("--force", action="store_true", help="rewrite even when the manifest matches")
    return p


def main(args):
    out = make_toy_dataset(args.out, args.seed, args.train_images, args.val_images, args.test_images,
                           args.colour_noise, args.texture_reliability, args.sites, args.classes_per_image, args.force)
    print(f"toy Cityscapes tree: {out}")
    return out


if __name__ == "__main__":
    main(get_args_parser().parse_args())
