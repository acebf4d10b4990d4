"""Write DMCP's toy dataset: 10 classes of procedurally drawn 32x32 images in ImageNet's
ImageFolder layout (`train/<class>/*.png`, `val/<class>/*.png`).

``python toy.py [--out data/toy/dmcp] [--seed 0] [--train-per-class 200] [--val-per-class 50] [--force]``
(the default ``--out`` is ``<repo>/data/toy/dmcp`` wherever it is run from). Deterministic from the
seed (one ``numpy.random.Generator``); a second run with the same settings finds
``manifest.json`` and writes nothing.

Each image is one shape class - circle, square, triangle, plus, ring, horizontal stripes,
vertical stripes, diagonal cross, checkerboard, dots - drawn with a random foreground and
background colour, a random size (35-70 % of the image), position and line width, then a
random gradient, Gaussian pixel noise and an occasional small distractor blob. Colour carries no
information; shape and texture do, so a small CNN learns it in a few epochs but chance is 10 %.
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
DEFAULT_OUT = REPO_ROOT / "data" / "toy" / "dmcp"
FORMAT_VERSION = 1
SIZE = 32
CLASSES = ("circle", "square", "triangle", "plus", "ring", "hstripes", "vstripes", "xcross",
           "checker", "dots")
MANIFEST = "manifest.json"


def _colors(rng: np.random.Generator) -> tuple[tuple, tuple]:
    """Foreground and background colours far enough apart to see the shape."""
    while True:
        fg, bg = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        if np.abs(fg.astype(int) - bg.astype(int)).sum() > 180:
            return tuple(int(v) for v in fg), tuple(int(v) for v in bg)


def _draw(rng: np.random.Generator, cls: int) -> np.ndarray:
    fg, bg = _colors(rng)
    img = Image.new("RGB", (SIZE, SIZE), bg)
    d = ImageDraw.Draw(img)
    r = rng.uniform(0.35, 0.7) * SIZE / 2
    cx, cy = rng.uniform(r, SIZE - r, 2) if r < SIZE / 2 else (SIZE / 2, SIZE / 2)
    w = int(rng.integers(2, 4))
    box = [cx - r, cy - r, cx + r, cy + r]
    name = CLASSES[cls]
    if name == "circle":
        d.ellipse(box, fill=fg)
    elif name == "square":
        d.rectangle(box, fill=fg)
    elif name == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    elif name == "plus":
        d.rectangle([cx - w, cy - r, cx + w, cy + r], fill=fg)
        d.rectangle([cx - r, cy - w, cx + r, cy + w], fill=fg)
    elif name == "ring":
        d.ellipse(box, outline=fg, width=w)
    elif name in ("hstripes", "vstripes"):
        period = int(rng.integers(5, 9))
        off = int(rng.integers(0, period))
        for p in range(-period + off, SIZE, period):
            if name == "hstripes":
                d.rectangle([0, p, SIZE, p + period // 2 - 1], fill=fg)
            else:
                d.rectangle([p, 0, p + period // 2 - 1, SIZE], fill=fg)
    elif name == "xcross":
        d.line([(cx - r, cy - r), (cx + r, cy + r)], fill=fg, width=w + 1)
        d.line([(cx - r, cy + r), (cx + r, cy - r)], fill=fg, width=w + 1)
    elif name == "checker":
        cell = int(rng.integers(4, 8))
        ox, oy = rng.integers(0, cell, 2)
        for i in range(-1, SIZE // cell + 2):
            for j in range(-1, SIZE // cell + 2):
                if (i + j) % 2 == 0:
                    x0, y0 = i * cell + ox, j * cell + oy
                    d.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=fg)
    elif name == "dots":
        for _ in range(int(rng.integers(4, 9))):
            x, y = rng.uniform(3, SIZE - 3, 2)
            d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=fg)
    if rng.uniform() < 0.3:  # a small distractor blob of the foreground colour
        x, y = rng.uniform(2, SIZE - 2, 2)
        d.rectangle([x - 1, y - 1, x + 1, y + 1], fill=fg)
    a = np.asarray(img, dtype=np.float32)
    gx, gy = rng.normal(0, 25, 2)
    ramp = (np.linspace(-0.5, 0.5, SIZE)[None, :] * gx + np.linspace(-0.5, 0.5, SIZE)[:, None] * gy)
    a = a + ramp[..., None] + rng.normal(0, 12, a.shape)
    return np.clip(a, 0, 255).astype(np.uint8)


def _settings(seed: int, train_per_class: int, val_per_class: int) -> dict:
    return {"generator": "dmcp.toy", "format_version": FORMAT_VERSION, "seed": int(seed),
            "train_per_class": int(train_per_class), "val_per_class": int(val_per_class), "size": SIZE}


def make_toy_dataset(out=DEFAULT_OUT, seed: int = 0, train_per_class: int = 200, val_per_class: int = 50,
                     force: bool = False, verbose: bool = False) -> Path:
    """Write the dataset under `out` (idempotent: skipped when manifest.json matches)."""
    out = Path(out)
    settings = _settings(seed, train_per_class, val_per_class)
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
    rng = np.random.default_rng(seed)
    counts = {}
    for split, n in (("train", train_per_class), ("val", val_per_class)):
        for ci, name in enumerate(CLASSES):
            folder = out / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.glob("*.png"):  # only our own files
                old.unlink()
            for i in range(n):
                Image.fromarray(_draw(rng, ci)).save(folder / f"{split}_{name}_{i:05d}.png")
        counts[split] = n * len(CLASSES)
    manifest.write_text(json.dumps({"settings": settings, "classes": list(CLASSES), "counts": counts},
                                   indent=1) + "\n")
    if verbose:
        print(f"wrote toy data: {out} ({counts['train']} train / {counts['val']} val images, "
              f"seed {seed}) in {time.time() - t0:.1f} s")
    return out


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--train-per-class", type=int, default=200, help="training images per class")
    p.add_argument("--val-per-class", type=int, default=50, help="validation images per class")
    p.add_argument("--force", action="store_true", help="rewrite even when up to date")
    return p


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    make_toy_dataset(args.out, args.seed, args.train_per_class, args.val_per_class, args.force, verbose=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
