"""Write the embedded toy dataset in Open Images V6's on-disk format: drawn shapes, a label hierarchy,
a long tail, concurrent labels, group-of boxes and verified negatives.

``python toy.py [--out data/toy/openimages_det] [--seed 0] [--train-images 900] [--val-images 300]
[--test-images 40] [--force]`` (``make openimages_det-data``). Deterministic from the seed (one
``numpy.random.Generator``); a second run with the same settings finds ``manifest.json`` and writes
nothing.

Files (the real V6 names, see README): ``class-descriptions-boxable.csv`` (no header, as V6),
``bbox_labels_600_hierarchy.json``, ``{train,validation,test}-annotations-bbox.csv`` (the 13 V6 columns),
``{train,validation,test}-annotations-human-imagelabels-boxable.csv``, ``{train,validation,test}/<ImageID>.jpg``
(96-128 px) and ``manifest.json`` (written last).

16 classes under the virtual root ``/m/0bl9f``, three levels and two classes with two parents::

    Round   -> Circle -> Red circle, Blue circle;  Ring;  Crescent
    Angular -> Square -> Green square, Yellow square;  Triangle;  Star;  Cross;  Diamond
    Jewel   -> Ring, Diamond                        (Ring and Diamond have two parents)
    Toy                                             (a concurrent label, outside the tree)

What each method can act on (no special case in the code reads these rules):

* long tail: the ten drawable leaf classes follow a Zipf law in training (exponent 1.6: the rarest
  has about 1/40 of the most frequent's objects); validation is drawn from a flatter law (0.3) so
  every class is evaluated on enough objects.
* concurrent labels, as Open Images annotates them: objects of the colour classes are often boxed a
  second time under their parent (Red circle + Circle, the same box: one object with two labels), and
  sometimes only under the parent; objects carrying the white dots of a toy (stars, rings and
  triangles) are boxed as Toy and as their shape, or under only one of the two (missing labels). The
  validation split boxes every object under its leaf (and Toy), as the metric expands the rest.
* group-of: about one image in eight holds a cluster of small objects of one class boxed once with
  IsGroupOf = 1.
* image-level labels: every boxed class verified present, two or three absent classes verified
  negative, and now and then a positive label for an object that has no box.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "data" / "toy" / "openimages_det"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ROOT = "/m/0bl9f"
BOX_HEADER = "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside"

# (LabelName, DisplayName, shape drawn or None, colour or None)
CLASSES = [
    ("/m/t_round", "Round", None, None), ("/m/t_angular", "Angular", None, None),
    ("/m/t_jewel", "Jewel", None, None), ("/m/t_toy", "Toy", None, None),
    ("/m/t_circle", "Circle", None, None), ("/m/t_square", "Square", None, None),
    ("/m/t_red_circle", "Red circle", "circle", "red"), ("/m/t_blue_circle", "Blue circle", "circle", "blue"),
    ("/m/t_green_square", "Green square", "square", "green"), ("/m/t_yellow_square", "Yellow square", "square", "yellow"),
    ("/m/t_triangle", "Triangle", "triangle", None), ("/m/t_star", "Star", "star", None),
    ("/m/t_cross", "Cross", "cross", None), ("/m/t_ring", "Ring", "ring", None),
    ("/m/t_diamond", "Diamond", "diamond", None), ("/m/t_crescent", "Crescent", "crescent", None),
]
HIERARCHY = {"LabelName": ROOT, "Subcategory": [
    {"LabelName": "/m/t_round", "Subcategory": [
        {"LabelName": "/m/t_circle", "Subcategory": [{"LabelName": "/m/t_red_circle"}, {"LabelName": "/m/t_blue_circle"}]},
        {"LabelName": "/m/t_ring"}, {"LabelName": "/m/t_crescent"}]},
    {"LabelName": "/m/t_angular", "Subcategory": [
        {"LabelName": "/m/t_square", "Subcategory": [{"LabelName": "/m/t_green_square"}, {"LabelName": "/m/t_yellow_square"}]},
        {"LabelName": "/m/t_triangle"}, {"LabelName": "/m/t_star"}, {"LabelName": "/m/t_cross"}, {"LabelName": "/m/t_diamond"}]},
    {"LabelName": "/m/t_jewel", "Subcategory": [{"LabelName": "/m/t_ring"}, {"LabelName": "/m/t_diamond"}]},
    {"LabelName": "/m/t_toy"}]}
# drawable leaves from most to least frequent in training
LEAVES = ["/m/t_red_circle", "/m/t_green_square", "/m/t_triangle", "/m/t_blue_circle", "/m/t_star",
          "/m/t_yellow_square", "/m/t_ring", "/m/t_cross", "/m/t_diamond", "/m/t_crescent"]
PARENT = {"/m/t_red_circle": "/m/t_circle", "/m/t_blue_circle": "/m/t_circle", "/m/t_green_square": "/m/t_square",
          "/m/t_yellow_square": "/m/t_square", "/m/t_triangle": "/m/t_angular", "/m/t_star": "/m/t_angular",
          "/m/t_cross": "/m/t_angular", "/m/t_ring": "/m/t_round", "/m/t_diamond": "/m/t_angular",
          "/m/t_crescent": "/m/t_round"}
TOY_SHAPES = ("/m/t_star", "/m/t_ring", "/m/t_triangle")        # the shapes that can carry a toy's dots
COLOUR_CLASSES = ("/m/t_red_circle", "/m/t_blue_circle", "/m/t_green_square", "/m/t_yellow_square")
COLOURS = {"red": (205, 40, 40), "blue": (40, 70, 210), "green": (40, 165, 60), "yellow": (225, 200, 40),
           "orange": (235, 130, 30), "purple": (140, 60, 170), "cyan": (40, 180, 190), "brown": (120, 80, 40)}
FREE_COLOURS = ("orange", "purple", "cyan", "brown", "red", "blue", "green", "yellow")
SIZES = ((112, 112), (128, 96), (96, 128), (128, 112), (112, 128))
P_DUP_PARENT = 0.5      # colour-class object boxed again under its parent (two labels, one object)
P_PARENT_ONLY = 0.15    # ... or only under its parent (the leaf label missing)
P_TOY = 0.35            # a star / ring / triangle carries a toy's dots
P_TOY_ONLY = 0.15       # a toy boxed only as Toy (shape label missing) ...
P_SHAPE_ONLY = 0.15     # ... or only as its shape (Toy missing)
P_GROUP = 0.12          # image holds a group-of cluster
P_UNBOXED_POSITIVE = 0.05


def _settings(seed, train_images, val_images, test_images):
    return {"generator": "openimages_det.toy", "format_version": FORMAT_VERSION, "seed": int(seed),
            "train_images": int(train_images), "val_images": int(val_images), "test_images": int(test_images)}


def _polygon(shape: str, cx: float, cy: float, size: float, angle: float):
    """Outer vertices [K, 2] (and the hole's, for a ring / crescent) of a shape of diameter ~size."""
    r = size / 2
    t20 = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    hole = None
    if shape in ("circle", "ring", "crescent"):
        pts = np.stack([np.cos(t20), np.sin(t20)], 1) * r
        if shape == "ring":
            hole = np.stack([np.cos(t20), np.sin(t20)], 1) * r * 0.5
        elif shape == "crescent":
            hole = np.stack([np.cos(t20), np.sin(t20)], 1) * r * 0.85 + [r * 0.45, -r * 0.1]
    elif shape == "square":
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * r * 0.8
    elif shape == "triangle":
        t = np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        pts = np.stack([np.cos(t), np.sin(t)], 1) * r
    elif shape == "diamond":
        pts = np.array([[0, -1], [0.6, 0], [0, 1], [-0.6, 0]]) * r
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
    rot = np.array([[c, s], [-s, c]])
    pts = pts @ rot + [cx, cy]
    if hole is not None:
        hole = hole @ rot + [cx, cy]
    return pts, hole


def _background(rng, w, h):
    base = rng.uniform(110, 190, 3)
    gx, gy = rng.uniform(-35, 35, 3), rng.uniform(-35, 35, 3)
    xs, ys = np.meshgrid(np.linspace(-0.5, 0.5, w), np.linspace(-0.5, 0.5, h))
    img = base + xs[..., None] * gx + ys[..., None] * gy + rng.normal(0, 8, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _draw(draw, rng, leaf: str, cx, cy, size, bg, toy: bool):
    """Draw one object; returns its tight box (x1, y1, x2, y2) in pixels."""
    shape = next(s for m, _, s, _ in CLASSES if m == leaf)
    colour = next(c for m, _, _, c in CLASSES if m == leaf) or str(rng.choice(FREE_COLOURS))
    pts, hole = _polygon(shape, cx, cy, size, float(rng.uniform(0, 2 * np.pi)))
    fill = tuple(int(np.clip(v + rng.normal(0, 12), 0, 255)) for v in COLOURS[colour])
    draw.polygon([tuple(p) for p in pts], fill=fill)
    if hole is not None:
        draw.polygon([tuple(p) for p in hole], fill=bg)
    if toy:  # a toy's white dots
        for dx, dy in ((-0.18, -0.1), (0.18, -0.1), (0.0, 0.2)):
            x, y, rr = cx + dx * size, cy + dy * size, max(1.5, size * 0.07)
            draw.ellipse([x - rr, y - rr, x + rr, y + rr], fill=(250, 250, 250))
    return pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()


def _place(rng, w, h, size, taken):
    for _ in range(30):
        cx, cy = rng.uniform(size / 2, w - size / 2), rng.uniform(size / 2, h - size / 2)
        if all((cx - x) ** 2 + (cy - y) ** 2 > ((size + s) * 0.55) ** 2 for x, y, s in taken):
            return cx, cy
    return None


def _image(rng, split: str, probs: np.ndarray, img_id: str, out_dir: Path):
    """Draw one image; returns (box rows, label rows)."""
    from PIL import Image, ImageDraw

    w, h = SIZES[int(rng.integers(len(SIZES)))]
    img = Image.fromarray(_background(rng, w, h))
    draw = ImageDraw.Draw(img)
    bg = tuple(int(v) for v in np.asarray(img)[h // 2, w // 2])
    boxes, positives, taken = [], set(), []
    train = split == "train"

    def add_box(label, x1, y1, x2, y2, group=0):
        boxes.append((img_id, "xclick", label, 1, max(0.0, x1 / w), min(1.0, x2 / w), max(0.0, y1 / h),
                      min(1.0, y2 / h), 0, 0, group, 0, 0))
        positives.add(label)

    if rng.random() < P_GROUP:  # a cluster of small objects of one class, boxed once as a group
        leaf = LEAVES[int(rng.choice(len(LEAVES), p=probs))]
        gx, gy = rng.uniform(0.3 * w, 0.7 * w), rng.uniform(0.3 * h, 0.7 * h)
        pts = []
        for _ in range(int(rng.integers(4, 7))):
            s = rng.uniform(9, 13)
            x, y = gx + rng.normal(0, 9), gy + rng.normal(0, 9)
            pts.append(_draw(draw, rng, leaf, x, y, s, bg, toy=False))
        x1, y1 = min(p[0] for p in pts), min(p[1] for p in pts)
        x2, y2 = max(p[2] for p in pts), max(p[3] for p in pts)
        add_box(leaf, x1, y1, x2, y2, group=1)
        taken.append(((x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1)))
    for _ in range(int(rng.choice([1, 2, 3, 4], p=[0.25, 0.4, 0.25, 0.1]))):
        leaf = LEAVES[int(rng.choice(len(LEAVES), p=probs))]
        size = rng.uniform(18, 38)
        at = _place(rng, w, h, size, taken)
        if at is None:
            continue
        taken.append((*at, size))
        toy = leaf in TOY_SHAPES and rng.random() < P_TOY
        x1, y1, x2, y2 = _draw(draw, rng, leaf, at[0], at[1], size, bg, toy)
        labels = [leaf]
        if train and leaf in COLOUR_CLASSES:
            u = rng.random()
            labels = [PARENT[leaf]] if u < P_PARENT_ONLY else [leaf, PARENT[leaf]] if u < P_PARENT_ONLY + P_DUP_PARENT else [leaf]
        if toy:
            u = rng.random() if train else 1.0
            labels = ["/m/t_toy"] if u < P_TOY_ONLY else labels if u < P_TOY_ONLY + P_SHAPE_ONLY else labels + ["/m/t_toy"]
        for lab in labels:
            add_box(lab, x1, y1, x2, y2)
    unboxed = None
    if rng.random() < P_UNBOXED_POSITIVE:  # an object verified present but not boxed
        leaf = LEAVES[int(rng.choice(len(LEAVES), p=probs))]
        at = _place(rng, w, h, 16, taken)
        if at is not None:
            _draw(draw, rng, leaf, at[0], at[1], 16, bg, toy=False)
            unboxed = leaf
    img.save(out_dir / f"{img_id}.jpg", quality=92)
    related = set(positives) | ({unboxed} if unboxed else set())
    for lab in list(related):
        related |= {a for a, kids in _ANCESTORS.items() if lab in kids} | _ANCESTORS.get(lab, set())
    absent = [m for m, *_ in CLASSES if m not in related]
    negatives = rng.choice(absent, size=min(len(absent), int(rng.integers(2, 4))), replace=False)
    label_rows = [(img_id, "verification", lab, 1) for lab in sorted(positives | ({unboxed} if unboxed else set()))]
    label_rows += [(img_id, "verification", str(lab), 0) for lab in sorted(negatives)]
    return boxes, label_rows


def _descendants() -> dict:
    out = {}

    def walk(node):
        kids = set()
        for sub in node.get("Subcategory", []):
            kids |= {sub["LabelName"]} | walk(sub)
        if node["LabelName"] != ROOT:
            out[node["LabelName"]] = out.get(node["LabelName"], set()) | kids
        return kids
    walk(HIERARCHY)
    return out


_ANCESTORS = _descendants()   # label -> its descendants: a negative must be unrelated to every positive


def make_toy_dataset(out=DEFAULT_OUT, seed: int = 0, train_images: int = 900, val_images: int = 300,
                     test_images: int = 40, force: bool = False) -> Path:
    """Write the toy dataset under ``out`` (nothing to do when the manifest matches the settings)."""
    out = Path(out)
    settings = _settings(seed, train_images, val_images, test_images)
    manifest = out / MANIFEST
    if manifest.is_file() and not force:
        try:
            if json.loads(manifest.read_text()).get("settings") == settings:
                return out
        except json.JSONDecodeError:
            pass
    out.mkdir(parents=True, exist_ok=True)
    if manifest.exists():
        manifest.unlink()
    rng = np.random.default_rng(seed)
    (out / "class-descriptions-boxable.csv").write_text("".join(f"{m},{n}\n" for m, n, *_ in CLASSES))
    (out / "bbox_labels_600_hierarchy.json").write_text(json.dumps(HIERARCHY, indent=1))
    ranks = np.arange(1, len(LEAVES) + 1, dtype=np.float64)
    counts = {}
    for split, n, expo in (("train", train_images, 1.6), ("validation", val_images, 0.3), ("test", test_images, 0.3)):
        probs = ranks ** -expo
        probs /= probs.sum()
        img_dir = out / split
        img_dir.mkdir(exist_ok=True)
        box_rows, label_rows = [], []
        for i in range(n):
            b, lab = _image(rng, split, probs, f"{split[:2]}{seed:02d}{i:05d}", img_dir)
            box_rows += b
            label_rows += lab
        with open(out / f"{split}-annotations-bbox.csv", "w") as f:
            f.write(BOX_HEADER + "\n")
            for r in box_rows:
                f.write(",".join(f"{v:.6f}" if isinstance(v, float) else str(v) for v in r) + "\n")
        with open(out / f"{split}-annotations-human-imagelabels-boxable.csv", "w") as f:
            f.write("ImageID,Source,LabelName,Confidence\n")
            f.writelines(",".join(map(str, r)) + "\n" for r in label_rows)
        counts[split] = {"images": n, "boxes": len(box_rows), "group_of": sum(r[10] for r in box_rows),
                         "labels_positive": sum(r[3] == 1 for r in label_rows),
                         "labels_negative": sum(r[3] == 0 for r in label_rows)}
    manifest.write_text(json.dumps({"settings": settings, "counts": counts}, indent=1))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-images", type=int, default=900)
    p.add_argument("--val-images", type=int, default=300)
    p.add_argument("--test-images", type=int, default=40)
    p.add_argument("--force", action="store_true", help="rewrite even when the manifest matches")
    a = p.parse_args(argv)
    out = make_toy_dataset(a.out, a.seed, a.train_images, a.val_images, a.test_images, a.force)
    print(json.dumps(json.loads((out / MANIFEST).read_text()), indent=1))
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
