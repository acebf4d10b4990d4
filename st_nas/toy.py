"""Write ST-NAS's toy dataset: 10 classes of procedurally drawn 36x36 images in ImageNet's own
layout, `train/<wnid>/*.JPEG` and `val/<wnid>/*.JPEG` (the wnids of Imagenette's ten classes).

    python toy.py [--out data/toy/st_nas] [--seed 0] [--train-per-class 300] [--val-per-class 50] [--force]

Deterministic from the seed (one numpy Generator, drawing class after class); a second run with
the same settings finds `manifest.json` and writes nothing. Each image is one motif (disk, ring,
checker, frame, wedge, zigzag, plus, saltire, bars, spots) at a random size, position and small
rotation, in a random foreground colour on a random background, with thin clutter lines, a
lighting gradient and pixel noise, saved as JPEG. Colour carries no class information; shape
and texture do. Chance is 10 %.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "data" / "toy" / "st_nas"
SIZE = 36
FORMAT_VERSION = 2
WNIDS = ("n01440764", "n02102040", "n02979186", "n03000684", "n03028079", "n03394916", "n03417042",
         "n03425413", "n03445777", "n03888605")
MOTIFS = ("disk", "ring", "checker", "frame", "wedge", "zigzag", "plus", "saltire", "bars", "spots")


def _rotate(points, cx, cy, angle):
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in points]


def _motif(d: ImageDraw.ImageDraw, rng: np.random.Generator, name: str, fg: tuple) -> None:
    r = rng.uniform(0.22, 0.4) * SIZE
    cx, cy = rng.uniform(r, SIZE - r, 2)
    a = rng.uniform(-0.35, 0.35)
    w = int(rng.integers(2, 4))
    square = [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if name == "disk":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif name == "ring":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=fg, width=w)
    elif name == "checker":
        cell = int(rng.integers(4, 7))
        for u in range(-3, 4):
            for v in range(-3, 4):
                if (u + v) % 2 == 0:
                    x0, y0 = cx + u * cell, cy + v * cell
                    d.polygon(_rotate([(x0, y0), (x0 + cell, y0), (x0 + cell, y0 + cell), (x0, y0 + cell)], cx, cy, a),
                              fill=fg)
    elif name == "frame":
        d.line(_rotate(square + square[:1], cx, cy, a), fill=fg, width=w)
    elif name == "wedge":
        d.polygon(_rotate([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], cx, cy, a), fill=fg)
    elif name == "zigzag":
        pts = [(cx - r + 2 * r * t / 4, cy + (r / 2 if t % 2 else -r / 2)) for t in range(5)]
        d.line(_rotate(pts, cx, cy, a), fill=fg, width=w)
    elif name == "plus":
        for pts in ([(cx - r, cy), (cx + r, cy)], [(cx, cy - r), (cx, cy + r)]):
            d.line(_rotate(pts, cx, cy, a), fill=fg, width=w + 1)
    elif name == "saltire":
        for pts in ([(cx - r, cy - r), (cx + r, cy + r)], [(cx - r, cy + r), (cx + r, cy - r)]):
            d.line(_rotate(pts, cx, cy, a), fill=fg, width=w + 1)
    elif name == "bars":
        n = int(rng.integers(2, 5))
        vertical = rng.uniform() < 0.5
        for k in range(n):
            t = -r + (2 * r) * (k + 0.5) / n
            pts = [(cx + t, cy - r), (cx + t, cy + r)] if vertical else [(cx - r, cy + t), (cx + r, cy + t)]
            d.line(_rotate(pts, cx, cy, a), fill=fg, width=w)
    elif name == "spots":
        for _ in range(int(rng.integers(4, 8))):
            x, y = rng.uniform(3, SIZE - 3, 2)
            d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=fg)


def draw(rng: np.random.Generator, label: int) -> np.ndarray:
    """One image of class `label` as uint8 HxWx3."""
    while True:
        fg, bg = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        if np.abs(fg - bg).sum() > 200:
            break
    img = Image.new("RGB", (SIZE, SIZE), tuple(int(v) for v in bg))
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(0, 3))):  # clutter: thin lines in a colour between fg and bg
        mix = tuple(int(v) for v in (fg + bg) // 2)
        d.line([tuple(rng.uniform(0, SIZE, 2)), tuple(rng.uniform(0, SIZE, 2))], fill=mix, width=1)
    _motif(d, rng, MOTIFS[label], tuple(int(v) for v in fg))
    x = np.asarray(img, dtype=np.float32)
    gx, gy = rng.normal(0, 30, 2)
    ramp = np.linspace(-0.5, 0.5, SIZE)
    x += (ramp[None, :] * gx + ramp[:, None] * gy)[..., None] + rng.normal(0, 10, x.shape)
    return np.clip(x, 0, 255).astype(np.uint8)


def make_toy_dataset(out=DEFAULT_OUT, seed: int = 0, train_per_class: int = 300, val_per_class: int = 50,
                     force: bool = False, verbose: bool = False) -> Path:
    """Write the dataset under `out` (skipped when manifest.json says it is already there)."""
    out = Path(out)
    settings = {"generator": "st_nas.toy", "format_version": FORMAT_VERSION, "seed": int(seed),
                "train_per_class": int(train_per_class), "val_per_class": int(val_per_class), "size": SIZE}
    manifest = out / "manifest.json"
    if not force and manifest.is_file():
        try:
            if json.loads(manifest.read_text()).get("settings") == settings:
                return out
        except (OSError, json.JSONDecodeError):
            pass
    out.mkdir(parents=True, exist_ok=True)
    manifest.unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in (("train", train_per_class), ("val", val_per_class)):
        for label, wnid in enumerate(WNIDS):
            folder = out / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.glob("*.JPEG"):
                old.unlink()
            for i in range(n):
                Image.fromarray(draw(rng, label)).save(folder / f"{wnid}_{split}_{i:05d}.JPEG", quality=90)
    manifest.write_text(json.dumps({"settings": settings, "classes": dict(zip(WNIDS, MOTIFS))}, indent=1) + "\n")
    if verbose:
        print(f"wrote {out}: {train_per_class * 10} train / {val_per_class * 10} val images (seed {seed})")
    return out


def get_args_parser(add_help=True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser("st_nas toy data", description=__doc__.split("\n")[0], add_help=add_help)
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--train-per-class", type=int, default=300, help="training images per class")
    p.add_argument("--val-per-class", type=int, default=50, help="validation images per class")
    p.add_argument("--force", action="store_true", help="rewrite even when up to date")
    return p


def main(args) -> Path:
    return make_toy_dataset(args.out, args.seed, args.train_per_class, args.val_per_class, args.force, verbose=True)


if __name__ == "__main__":
    main(get_args_parser().parse_args(sys.argv[1:]))
