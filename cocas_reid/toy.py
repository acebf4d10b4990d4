"""Write a COCAS+-layout toy dataset of synthetic people who change clothes.

``python toy.py [--out data/toy/cocas_reid] [--seed 0] [--train-ids 48] [--test-ids 40]
[--query-only-ids 4] [--images-per-outfit 4] [--force]`` (``make cocas_reid-data`` runs it; the
default ``--out`` is ``<repo>/data/toy/cocas_reid`` wherever it is run from). Deterministic from
the seed (one ``numpy.random.Generator``); a second run with the same settings finds
``manifest.json`` and writes nothing.

Written exactly as the real set is laid out (see data.py)::

    images/<pid>/<pid>_<clothes>_c<cam>_<n>.jpg            person boxes, 128 x 64
    images_desensitized/<same path>                         face and background blurred
    templates/<pid>_<clothes>.jpg                            clothes templates, 64 x 64 (outfit on a mannequin)
    parsing/<pid>/<pid>_<clothes>_c<cam>_<n>.png             LIP labels of every person image
    train.txt     image_path template_path pid clothes_id camera_id
    query.txt     image_path template_path pid clothes_id camera_id   (template: the gallery outfit)
    gallery.txt   image_path pid clothes_id camera_id
    manifest.json settings and counts (written last)

What the toy is made to show. Identity is carried by biometric cues only: skin tone, hair colour
and style, head size and shape, shoulder width and leg length. Every person owns 2-3 outfits drawn
from one small pool, so outfit colours change between a person's outfits and recur across people:
clothes alone cannot tell people apart, and a person's image in another outfit shares no clothes
colour with the target. Four cameras shift the lighting (colour casts, brightness), and images
jitter in position and scale with sensor noise. For each test person one outfit forms the gallery;
the other outfits are queries, each paired with the template of the gallery outfit. A few query
identities have no gallery images (skipped by the metric, as in the real protocol). Templates are
product photos: the outfit on a grey mannequin against a studio background, cropped to the clothes;
the clothes branch, trained on templates only, must match them to clothes patches cut from
person images under a camera's light.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from cocas_reid.clothes import box_from_labels

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "data" / "toy" / "cocas_reid"
FORMAT_VERSION = 3
MANIFEST = "manifest.json"
H, W = 128, 64  # person boxes on disk
TH = 64  # templates on disk (square)
# LIP labels (Gong et al., Look into Person)
BG, HAIR, UPPER, PANTS, SKIRT, FACE, L_ARM, R_ARM, L_LEG, R_LEG, L_SHOE, R_SHOE = 0, 2, 5, 9, 12, 13, 14, 15, 16, 17, 18, 19
SKIN_LIGHT, SKIN_DARK = np.array([236, 200, 172.0]), np.array([96, 62, 44.0])
HAIR_COLORS = np.array([[22, 18, 16], [72, 44, 26], [126, 82, 44], [206, 174, 104], [156, 62, 30],
                        [158, 156, 152]], dtype=float)
CLOTH_COLORS = np.array([[200, 30, 30], [30, 60, 190], [40, 150, 60], [230, 200, 40], [240, 240, 240],
                         [30, 30, 35], [130, 40, 150], [240, 130, 30], [90, 170, 210], [150, 110, 70],
                         [230, 120, 170], [120, 120, 125]], dtype=float)
# per-camera colour gain (lighting) and background colour
CAM_GAIN = np.array([[1.0, 1.0, 1.0], [1.06, 0.99, 0.90], [0.86, 0.87, 0.90], [0.93, 0.98, 1.07]])
CAM_BG = np.array([[120, 125, 118], [160, 150, 130], [90, 96, 104], [128, 140, 150]], dtype=float)
STUDIO = np.array([232, 232, 228.0])
MANNEQUIN = {"skin": np.array([196, 196, 200.0]), "hair": np.array([196, 196, 200.0]), "hair_style": 2,
             "head_h": 18.0, "head_aspect": 0.8, "shoulder": 26.0, "leg_ratio": 0.5}


def _settings(seed, train_ids, test_ids, query_only_ids, images_per_outfit, outfit_pool) -> dict:
    return {"generator": "cocas_reid.toy", "format_version": FORMAT_VERSION, "seed": int(seed),
            "train_ids": int(train_ids), "test_ids": int(test_ids), "query_only_ids": int(query_only_ids),
            "images_per_outfit": int(images_per_outfit), "outfit_pool": int(outfit_pool)}


def _person(rng) -> dict:
    """Biometric traits of one identity (what stays when the clothes change)."""
    tone = rng.random()
    return {"skin": SKIN_LIGHT * (1 - tone) + SKIN_DARK * tone + rng.normal(0, 6, 3),
            "hair": HAIR_COLORS[rng.integers(len(HAIR_COLORS))] + rng.normal(0, 8, 3),
            "hair_style": int(rng.integers(3)),  # 0 short, 1 long, 2 buzz cut
            "head_h": rng.uniform(15, 22), "head_aspect": rng.uniform(0.62, 0.95),
            "shoulder": rng.uniform(20, 31), "leg_ratio": rng.uniform(0.44, 0.58)}


def _outfit(rng) -> dict:
    c = rng.choice(len(CLOTH_COLORS), size=3, replace=False)
    return {"top": CLOTH_COLORS[c[0]], "second": CLOTH_COLORS[c[1]], "bottom": CLOTH_COLORS[c[2]],
            "pattern": int(rng.integers(3)),  # 0 solid, 1 horizontal stripes, 2 vertical stripes
            "short_sleeves": bool(rng.random() < 0.5), "skirt": bool(rng.random() < 0.3)}


def _rect(yy, xx, y0, y1, x0, x1):
    return (yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1)


def _ellipse(yy, xx, cy, cx, ry, rx):
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def _pattern(yy, xx, kind: int, period: int = 4):
    if kind == 1:
        return (yy // period) % 2 == 1
    if kind == 2:
        return (xx // period) % 2 == 1
    return np.zeros_like(yy, dtype=bool)


def _render_person(rng, person: dict, outfit: dict, cam: int, background=None):
    """(RGB uint8 H x W x 3, LIP label map H x W) of one person box under camera `cam`."""
    yy, xx = np.mgrid[0:H, 0:W].astype(float)
    img = np.empty((H, W, 3))
    img[:] = (CAM_BG[cam] if background is None else background) + rng.normal(0, 10, 3)
    img += (yy / H - 0.5)[..., None] * rng.uniform(-40, 40)  # floor / wall gradient
    lab = np.zeros((H, W), np.uint8)
    s = rng.uniform(0.9, 1.0)  # distance to the camera
    cx = W / 2 + rng.uniform(-3, 3)
    top = 4 + rng.uniform(0, 4) + (1 - s) * 40
    bottom = H - 3 - rng.uniform(0, 3)
    hh, hw = person["head_h"] * s, person["head_h"] * person["head_aspect"] * s / 2
    sh = person["shoulder"] * s / 2
    neck = top + hh
    body = bottom - neck - 3
    hip = neck + 2 + body * (1 - person["leg_ratio"])
    foot = bottom - 3

    def paint(mask, color, label):
        img[mask] = color
        lab[mask] = label

    skin, hair = person["skin"], person["hair"]
    if person["hair_style"] == 1:  # long hair falls behind the shoulders
        paint(_rect(yy, xx, top + hh * 0.3, neck + 8 * s, cx - hw - 2, cx + hw + 2), hair, HAIR)
    paint(_rect(yy, xx, neck - 1, neck + 3, cx - hw * 0.4, cx + hw * 0.4), skin, FACE)  # neck
    # arms (behind the torso), sleeves and hands
    arm_w = 5 * s
    arm_end = neck + 3 + (hip - neck) * 1.05
    sleeve_end = neck + 3 + (hip - neck) * (0.4 if outfit["short_sleeves"] else 0.95)
    for side, label in ((-1, L_ARM), (1, R_ARM)):
        x0 = cx - sh - arm_w + 1 if side < 0 else cx + sh - 1
        paint(_rect(yy, xx, neck + 3, arm_end, x0, x0 + arm_w), skin, label)
        sleeve = _rect(yy, xx, neck + 3, sleeve_end, x0, x0 + arm_w)
        paint(sleeve, outfit["top"], UPPER)
    # torso: shoulders taper to the hip
    frac = np.clip((yy - neck - 3) / max(hip - neck - 3, 1), 0, 1)
    half = sh * (1 - 0.18 * frac)
    torso = (yy >= neck + 3) & (yy < hip) & (np.abs(xx - cx) < half)
    paint(torso, outfit["top"], UPPER)
    paint(torso & _pattern(yy - neck, xx, outfit["pattern"]), outfit["second"], UPPER)
    # legs, pants or skirt, shoes
    leg_w, gap = sh * 0.78, 1.5 * s
    for side, label, shoe in ((-1, L_LEG, L_SHOE), (1, R_LEG, R_SHOE)):
        x0, x1 = (cx - gap / 2 - leg_w, cx - gap / 2) if side < 0 else (cx + gap / 2, cx + gap / 2 + leg_w)
        leg = _rect(yy, xx, hip, foot, x0, x1)
        if outfit["skirt"]:
            paint(leg, skin, label)
        else:
            paint(leg, outfit["bottom"], PANTS)
        paint(_rect(yy, xx, foot, bottom, x0 - 1, x1 + 1), np.array([35, 30, 28.0]), shoe)
    if outfit["skirt"]:
        sfrac = np.clip((yy - hip) / max(foot - hip, 1), 0, 1)
        skirt = (yy >= hip) & (yy < hip + (foot - hip) * 0.5) & (np.abs(xx - cx) < sh * (0.82 + 0.35 * sfrac))
        paint(skirt, outfit["bottom"], SKIRT)
    # head: face, then the hair cap
    hcy = top + hh / 2
    paint(_ellipse(yy, xx, hcy, cx, hh / 2, hw), skin, FACE)
    cap = {0: 0.38, 1: 0.42, 2: 0.18}[person["hair_style"]]
    paint(_ellipse(yy, xx, hcy, cx, hh / 2 + 1, hw + 1) & (yy < top + hh * cap), hair, HAIR)
    eyes = (np.abs(yy - (hcy - hh * 0.05)) < 1) & (np.abs(np.abs(xx - cx) - hw * 0.45) < 1)
    img[eyes] = skin * 0.35
    # camera light, exposure, sensor noise
    img = img * CAM_GAIN[cam] * rng.uniform(0.88, 1.12) + rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), lab


def _render_template(rng, outfit: dict):
    """The outfit on a grey mannequin against a light studio background, cropped to the clothes
    (the LIP clothes labels) and resized to TH x TH: a product photo of the clothes."""
    img, lab = _render_person(rng, MANNEQUIN, outfit, cam=0, background=STUDIO)
    x1, y1, x2, y2 = (int(v) for v in box_from_labels(lab))
    return np.asarray(Image.fromarray(img[y1:y2, x1:x2]).resize((TH, TH), Image.BILINEAR))


def _desensitize(img: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """Blur the face and the background (COCAS's desensitised images)."""
    blurred = ndimage.uniform_filter(img.astype(float), size=(7, 7, 1))
    mask = np.isin(lab, (BG, FACE))[..., None]
    return np.where(mask, blurred, img).astype(np.uint8)


def _up_to_date(out: Path, settings: dict) -> bool:
    m = out / MANIFEST
    if not m.is_file():
        return False
    try:
        manifest = json.loads(m.read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("settings") != settings:
        return False
    lists = [out / f for f in ("train.txt", "query.txt", "gallery.txt")]
    return all(p.is_file() for p in lists) and \
        sum(1 for _ in (out / "images").rglob("*.jpg")) == manifest.get("counts", {}).get("images")


def make_toy_dataset(out: os.PathLike = DEFAULT_OUT, seed: int = 0, train_ids: int = 48, test_ids: int = 40,
                     query_only_ids: int = 4, images_per_outfit: int = 4, outfit_pool: int = 12,
                     force: bool = False, verbose: bool = False) -> Path:
    """Write the toy dataset under ``out`` (see the module docstring); returns ``out``."""
    out = Path(out)
    settings = _settings(seed, train_ids, test_ids, query_only_ids, images_per_outfit, outfit_pool)
    if train_ids < 4 or test_ids < 2 or images_per_outfit < 2 or outfit_pool < 3:
        raise ValueError("need >= 4 train ids, >= 2 test ids, >= 2 images per outfit, >= 3 outfits in the pool")
    if not force and _up_to_date(out, settings):
        if verbose:
            print(f"toy data up to date: {out}")
        return out
    t0 = time.time()
    (out / MANIFEST).unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    pool = [_outfit(rng) for _ in range(outfit_pool)]
    n_ids = train_ids + test_ids + query_only_ids
    pids = sorted(int(p) for p in rng.choice(np.arange(1, 10000), size=n_ids, replace=False))
    order = rng.permutation(n_ids)
    split_of = {}
    for i, k in enumerate(order):
        split_of[pids[k]] = "train" if i < train_ids else "test" if i < train_ids + test_ids else "query_only"
    lines = {"train": [], "query": [], "gallery": []}
    counts = {"images": 0, "templates": 0}
    for pid in pids:
        person = _person(rng)
        n_out = int(rng.integers(2, 4))
        outfits = rng.choice(outfit_pool, size=n_out, replace=False)
        tmpl = {}
        for cid in range(1, n_out + 1):
            rel = f"templates/{pid:04d}_{cid}.jpg"
            _save(out / rel, _render_template(rng, pool[outfits[cid - 1]]))
            tmpl[cid] = rel
            counts["templates"] += 1
        gallery_cid = int(rng.integers(1, n_out + 1))
        for cid in range(1, n_out + 1):
            for n in range(images_per_outfit):
                cam = int(rng.integers(len(CAM_GAIN)))
                img, lab = _render_person(rng, person, pool[outfits[cid - 1]], cam)
                name = f"{pid:04d}/{pid:04d}_{cid}_c{cam + 1}_{n}"
                _save(out / "images" / f"{name}.jpg", img)
                _save(out / "images_desensitized" / f"{name}.jpg", _desensitize(img, lab))
                (out / "parsing" / f"{name}.png").parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(lab, mode="L").save(out / "parsing" / f"{name}.png")
                counts["images"] += 1
                rel = f"images/{name}.jpg"
                split = split_of[pid]
                if split == "train":
                    lines["train"].append(f"{rel} {tmpl[cid]} {pid} {cid} {cam + 1}")
                elif split == "test" and cid == gallery_cid:
                    lines["gallery"].append(f"{rel} {pid} {cid} {cam + 1}")
                else:  # another outfit: a query, searched with the gallery outfit's template
                    target = gallery_cid if split == "test" else (cid % n_out) + 1
                    lines["query"].append(f"{rel} {tmpl[target]} {pid} {cid} {cam + 1}")
    for name, rows in lines.items():
        (out / f"{name}.txt").write_text("\n".join(rows) + "\n")
    counts.update({k: len(v) for k, v in lines.items()})
    manifest = {"settings": settings, "counts": counts,
                "ids": {s: sum(1 for v in split_of.values() if v == s) for s in ("train", "test", "query_only")}}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    if verbose:
        print(f"wrote toy data: {out} ({counts['images']} person images, {counts['templates']} templates) "
              f"in {time.time() - t0:.1f} s")
    return out


def _save(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, quality=92)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--train-ids", type=int, default=48, help="identities in train.txt")
    p.add_argument("--test-ids", type=int, default=40, help="test identities (gallery outfit + query outfits)")
    p.add_argument("--query-only-ids", type=int, default=4, help="query identities absent from the gallery")
    p.add_argument("--images-per-outfit", type=int, default=4, help="person images of each outfit")
    p.add_argument("--outfit-pool", type=int, default=12, help="distinct outfits shared by everybody")
    p.add_argument("--force", action="store_true", help="rewrite even when up to date")
    return p


def main(argv=None) -> int:
    a = get_args_parser().parse_args(argv)
    make_toy_dataset(a.out, a.seed, a.train_ids, a.test_ids, a.query_only_ids, a.images_per_outfit,
                     a.outfit_pool, a.force, verbose=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
