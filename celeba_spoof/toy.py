"""Write a CelebA-Spoof-layout toy dataset of synthetic faces and spoofs with learnable cues.

``python toy.py [--out data/toy/celeba_spoof] [--seed 0] [--train-subjects 40] [--test-subjects 14]
[--live-per-subject 6] [--spoof-per-subject 14] [--force]`` (``make celeba_spoof-data`` runs it;
the default ``--out`` is ``<repo>/data/toy/celeba_spoof`` wherever it is run from). Deterministic
from the seed (one ``numpy.random.Generator``); a second run with the same settings finds
``manifest.json`` and writes nothing.

Written, exactly as the real release lays it out (see data.py)::

    Data/{train,test}/<subject>/{live,spoof}/<NNNNNN>.jpg   + <NNNNNN>_BB.txt (224-frame box)
    Data/.../<NNNNNN>_depth.png      depth map of ~80 % of the live images (the others: none)
    Data/.../<NNNNNN>_reflect.png    reflection map of ~80 % of the spoof images
    metas/intra_test/{train,test}_label.json        44-integer vectors
    metas/protocol1/{train,test}_label.json         toy cross-illumination protocol
    metas/protocol2/test_on_screen/{train,test}_label.json   toy unseen-medium protocol
    manifest.json                                   settings and counts (written last)

Faces: a shaded ellipsoid (skin tone, lighting direction), eyes, brows, nose, mouth, hair, and
rendered attributes (hair colour, male (short hair), bald, bangs, eyeglasses, hat, smiling, mouth
open, lipstick, pale skin, beard) on an indoor or outdoor background, camera noise; the other
CelebA attributes are 0 (a label says what the image shows). Spoofs show a picture of the
subject through a medium, each with its cue: print (Photo / Poster / A4: desaturation, halftone
dots, paper margins), screen (PC / Pad / Phone: moiré, bezel, blue cast, glare), masks (Face /
Upper Body / Region: printed texture with sharp cut edges and eye holes; 3D Mask: smooth glossy
plastic), at a strength ``--cue`` (1 = the full artefacts, 0 = a perfect replica of the face).
Every image is captured under one of four illuminations (Normal / Strong / Back / Dark,
rendered), live ones included, so illumination alone does not give a spoof away. Spoofs carry the
spoof type, illumination and environment (Indoor / Outdoor background) labels; live images 0
there, as in the release. Depth maps are the
ellipsoid height (live), reflection maps the rendered glare / gloss (spoof). Broken inputs as in
the real release: a few empty, negative, malformed and missing box files, images on disk without
a label, a labelled image missing from disk.
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

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "data" / "toy" / "celeba_spoof"
FORMAT_VERSION = 3
MANIFEST = "manifest.json"
DEFAULT_CUE = 0.6  # strength of the spoof media's artefacts (_render): subtle, see the README's toy section
# spoof types drawn (index into labels.SPOOF_TYPES) and their weights
SPOOF_DRAW = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
SPOOF_P = np.array([3, 2, 3, 1, 1, 1, 3, 2, 3, 1], dtype=float)
PRINT, SCREEN = (1, 2, 3), (7, 8, 9)
ATTR = {"Bald": 4, "Bangs": 5, "Black_Hair": 8, "Blond_Hair": 9, "Brown_Hair": 11,
        "Eyeglasses": 15, "Gray_Hair": 17, "Male": 20, "Mouth_Slightly_Open": 21, "No_Beard": 24,
        "Pale_Skin": 26, "Smiling": 31, "Wearing_Hat": 35, "Wearing_Lipstick": 36, "Young": 39}
HAIR = {"Black_Hair": (0.08, 0.06, 0.05), "Blond_Hair": (0.85, 0.72, 0.42),
        "Brown_Hair": (0.42, 0.26, 0.14), "Gray_Hair": (0.62, 0.62, 0.64)}


def _settings(seed, train_subjects, test_subjects, live_per_subject, spoof_per_subject, cue) -> dict:
    return {"generator": "celeba_spoof.toy", "format_version": FORMAT_VERSION, "seed": int(seed),
            "train_subjects": int(train_subjects), "test_subjects": int(test_subjects),
            "live_per_subject": int(live_per_subject), "spoof_per_subject": int(spoof_per_subject),
            "cue": float(cue)}


# ------------------------------------------------------------------------------------------
# drawing helpers (float32 images in [0, 1], H x W x 3)


def _ellipse(yy, xx, cy, cx, ry, rx):
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2


def _paint(img, mask, color, alpha=1.0):
    m = (mask.astype(np.float32) * alpha)[..., None]
    img *= 1 - m
    img += m * np.asarray(color, np.float32)


def _background(rng, H, W, outdoor: bool):
    yy = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    img = np.empty((H, W, 3), np.float32)
    if outdoor:  # sky over ground
        sky = np.array([0.45, 0.65, 0.95]) * rng.uniform(0.8, 1.1)
        ground = np.array(rng.choice([[0.25, 0.5, 0.2], [0.5, 0.5, 0.5], [0.55, 0.45, 0.3]])) * rng.uniform(0.7, 1.1)
        horizon = rng.uniform(0.5, 0.8)
        img[:] = np.where(yy < horizon, sky * (0.75 + 0.35 * yy), ground)
    else:  # a wall with a gradient and a piece of furniture
        wall = rng.uniform(0.35, 0.9, size=3)
        img[:] = wall * (0.85 + 0.25 * yy)
        x0, w = int(rng.integers(0, W)), int(rng.integers(W // 6, W // 2))
        img[int(H * rng.uniform(0.4, 0.7)):, x0:x0 + w] = rng.uniform(0.1, 0.6, size=3)
    return img


def _subject(rng) -> dict:
    attrs = np.zeros(40, int)  # an attribute we do not render is absent: a label says what the image shows
    hair = str(rng.choice(list(HAIR)))
    for k in HAIR:
        attrs[ATTR[k]] = int(k == hair)
    male = rng.random() < 0.5
    attrs[ATTR["Male"]] = int(male)
    attrs[ATTR["Bald"]] = int(male and rng.random() < 0.15)
    attrs[ATTR["Bangs"]] = int(not attrs[ATTR["Bald"]] and rng.random() < 0.3)
    attrs[ATTR["Eyeglasses"]] = int(rng.random() < 0.25)
    attrs[ATTR["No_Beard"]] = int(not male or rng.random() < 0.6)
    attrs[ATTR["Pale_Skin"]] = int(rng.random() < 0.15)
    attrs[ATTR["Wearing_Lipstick"]] = int(not male and rng.random() < 0.5)
    skin = np.array([0.93, 0.76, 0.62]) * rng.uniform(0.55, 1.05)
    if attrs[ATTR["Pale_Skin"]]:
        skin = np.array([0.97, 0.9, 0.86])
    return {"attrs": attrs, "skin": skin, "hair": np.array(HAIR[hair]), "aspect": rng.uniform(1.15, 1.45)}


def _face(rng, img, subj, attrs, cx, cy, rx):
    """Draw the face into ``img``; returns the ellipsoid depth map (0 outside the face)."""
    H, W, _ = img.shape
    ry = rx * subj["aspect"]
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    a = attrs
    if not a[ATTR["Bald"]]:  # hair: a cap behind and above the face, long on women
        _paint(img, _ellipse(yy, xx, cy - 0.25 * ry, cx, ry * 0.95, rx * 1.2) < 1, subj["hair"])
        if not a[ATTR["Male"]]:
            _paint(img, (np.abs(xx - cx) < 1.25 * rx) & (yy > cy - 0.3 * ry) & (yy < cy + 1.1 * ry), subj["hair"])
    e = _ellipse(yy, xx, cy, cx, ry, rx)
    inside = e < 1
    z = np.sqrt(np.clip(1 - e, 0, 1))
    # Lambertian shading of the ellipsoid under a random light direction
    nx, ny = (xx - cx) / rx * 0.8, (yy - cy) / ry * 0.8
    light = rng.normal(size=3) * [0.5, 0.5, 0.2] + [0, 0, 1]
    light /= np.linalg.norm(light)
    shade = np.clip(0.5 + 0.5 * (nx * light[0] + ny * light[1] + z * light[2]), 0.3, 1.1)
    face = subj["skin"][None, None, :] * shade[..., None]
    img[inside] = face[inside]
    if not a[ATTR["No_Beard"]]:
        _paint(img, inside & (yy > cy + 0.35 * ry), (0.2, 0.15, 0.12), 0.6)
    if a[ATTR["Bangs"]]:
        _paint(img, inside & (yy < cy - 0.55 * ry), subj["hair"])
    if a[ATTR["Wearing_Hat"]]:
        top = cy - 0.7 * ry
        _paint(img, (yy < top) & (yy > top - 0.6 * ry) & (np.abs(xx - cx) < rx * 1.15), rng.uniform(0, 1, 3))
        _paint(img, (np.abs(yy - top) < 0.08 * ry) & (np.abs(xx - cx) < rx * 1.5), rng.uniform(0, 1, 3))
    ey, ex = cy - 0.15 * ry, 0.42 * rx
    for s in (-1, 1):  # eyes, irises, brows
        _paint(img, _ellipse(yy, xx, ey, cx + s * ex, 0.09 * ry, 0.17 * rx) < 1, (0.95, 0.95, 0.95))
        _paint(img, _ellipse(yy, xx, ey, cx + s * ex, 0.07 * ry, 0.07 * rx) < 1, (0.15, 0.1, 0.08))
        _paint(img, (np.abs(yy - (ey - 0.17 * ry)) < 0.035 * ry) & (np.abs(xx - cx - s * ex) < 0.2 * rx),
               subj["hair"] * 0.6)
        if a[ATTR["Eyeglasses"]]:
            ring = np.abs(np.sqrt(_ellipse(yy, xx, ey, cx + s * ex, 0.17 * ry, 0.26 * rx)) - 1) < 0.12
            _paint(img, ring, (0.05, 0.05, 0.05))
    if a[ATTR["Eyeglasses"]]:
        _paint(img, (np.abs(yy - ey) < 0.025 * ry) & (np.abs(xx - cx) < 0.18 * rx), (0.05, 0.05, 0.05))
    _paint(img, _ellipse(yy, xx, cy + 0.12 * ry, cx, 0.16 * ry, 0.07 * rx) < 1, subj["skin"] * 0.7, 0.5)
    my = cy + 0.45 * ry
    lip = (0.75, 0.1, 0.15) if a[ATTR["Wearing_Lipstick"]] else subj["skin"] * 0.55
    curve = 0.12 * ry * (1 - ((xx - cx) / (0.35 * rx)) ** 2) if a[ATTR["Smiling"]] else 0.0
    _paint(img, (np.abs(yy - my - curve) < 0.035 * ry) & (np.abs(xx - cx) < 0.35 * rx), lip)
    if a[ATTR["Mouth_Slightly_Open"]]:
        _paint(img, _ellipse(yy, xx, my + 0.04 * ry, cx, 0.05 * ry, 0.2 * rx) < 1, (0.15, 0.02, 0.03))
    return np.where(inside, z, 0.0).astype(np.float32), (cx - 1.05 * rx, cy - 1.05 * ry, 2.1 * rx, 2.15 * ry)


def _image_attrs(rng, subj) -> np.ndarray:
    a = subj["attrs"].copy()
    a[ATTR["Smiling"]] = int(rng.random() < 0.45)
    a[ATTR["Mouth_Slightly_Open"]] = int(rng.random() < 0.35)
    a[ATTR["Wearing_Hat"]] = int(rng.random() < 0.12)
    return a


def _blur(img):
    p = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    return sum(p[dy:dy + img.shape[0], dx:dx + img.shape[1]] for dy in range(3) for dx in range(3)) / 9.0


def _halftone(H, W, period, angle, oy=0.0, ox=0.0):
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    u = (xx - ox) * np.cos(angle) + (yy - oy) * np.sin(angle)
    v = -(xx - ox) * np.sin(angle) + (yy - oy) * np.cos(angle)
    return (0.5 + 0.5 * np.cos(2 * np.pi * u / period) * np.cos(2 * np.pi * v / period)).astype(np.float32)


def _glare(rng, H, W, strength):
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    cy, cx = rng.uniform(0.15, 0.85) * H, rng.uniform(0.15, 0.85) * W
    sy, sx = rng.uniform(0.06, 0.2) * H, rng.uniform(0.1, 0.35) * W
    g = np.exp(-0.5 * (((yy - cy) / sy) ** 2 + ((xx - cx) / sx) ** 2)) * strength
    tint = np.array([1.0, 1.0, 1.0]) - rng.uniform(0, 0.15, 3)
    return (g[..., None] * tint).astype(np.float32)


def _illuminate(rng, img, illum: int, lit):
    """The capture's illumination: 1 Normal (unchanged), 2 Strong, 3 Back (``lit``, the part
    behind the subject or the medium, stays bright), 4 Dark."""
    if illum == 2:
        img = img * 1.45 + 0.08
    elif illum == 3:
        img = img * 0.55
        img[lit] = 0.75 + 0.25 * img[lit]
    elif illum == 4:
        img = img * 0.38 + rng.normal(0, 0.03, img.shape).astype(np.float32)
    return img


def _render(rng, subj, spoof_type: int, illum: int, outdoor: bool, H: int, W: int, cue: float = 1.0):
    """One image -> (rgb float [H, W, 3], depth [H, W] or None, reflect [H, W, 3] or None,
    box (x, y, w, h) in pixels, attributes). ``cue`` scales what the spoof medium adds to the
    picture of the face (print, screen, mask artefacts and their reflections): 1 = full strength,
    0 = a clean picture of the face in the medium."""
    attrs = _image_attrs(rng, subj)
    img = _background(rng, H, W, outdoor)
    rx = rng.uniform(0.2, 0.27) * W
    cx = W / 2 + rng.uniform(-0.08, 0.08) * W
    cy = H / 2 + rng.uniform(-0.05, 0.1) * H
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    if spoof_type == 0:
        depth, box = _face(rng, img, subj, attrs, cx, cy, rx)
        img *= rng.uniform(0.75, 1.2)
        # live faces are captured under the same illuminations as the spoofs (their label stays
        # 0, "Live", as in the release): illumination alone does not tell live from spoof
        img = _illuminate(rng, img, illum, depth <= 0)
        img += rng.normal(0, 0.02, img.shape).astype(np.float32)
        if rng.random() < 0.5:
            img = _blur(img)
        return np.clip(img, 0, 1), depth, None, box, attrs

    reflect = np.zeros((H, W, 3), np.float32)
    ry = rx * subj["aspect"]
    # the medium: a rectangle around the face holding the picture (its own background + face)
    my0, my1 = int(max(0, cy - ry * rng.uniform(1.5, 2.2))), int(min(H, cy + ry * rng.uniform(1.4, 2.0)))
    mx0, mx1 = int(max(0, cx - rx * rng.uniform(1.6, 2.4))), int(min(W, cx + rx * rng.uniform(1.6, 2.4)))
    pic = _background(rng, H, W, rng.random() < 0.5)
    _, box = _face(rng, pic, subj, attrs, cx, cy, rx)
    clean = pic.copy()  # the picture without what the medium adds
    inside = np.zeros((H, W), bool)
    inside[my0:my1, mx0:mx1] = True
    if spoof_type in PRINT:
        gray = pic.mean(2, keepdims=True)
        pic = 0.6 * pic + 0.4 * gray + 0.05
        period = {1: 3.0, 2: 4.5, 3: 3.5}[spoof_type] * rng.uniform(0.9, 1.1)
        amp = {1: 0.22, 2: 0.3, 3: 0.35}[spoof_type]
        pic *= (1 - amp * _halftone(H, W, period, rng.uniform(0, np.pi)))[..., None]
        border = max(2, int(0.04 * W))
        frame = inside.copy()
        frame[my0 + border:my1 - border, mx0 + border:mx1 - border] = False
        pic[frame] = 0.95
        if spoof_type == 3:  # A4: printed text lines in the margin
            pic[frame & ((yy.astype(int) // 2) % 3 == 0)] = 0.35
        if spoof_type == 1:  # glossy photo paper: a soft sheen
            reflect = _glare(rng, H, W, 0.25) * inside[..., None]
    elif spoof_type in SCREEN:
        pic = pic * 0.85 + np.array([0.02, 0.06, 0.16], np.float32)
        f1 = rng.uniform(0.2, 0.3)
        f2 = f1 * rng.uniform(1.06, 1.15)
        ang = rng.uniform(0, np.pi)
        u = xx * np.cos(ang) + yy * np.sin(ang)
        moire = np.cos(2 * np.pi * f1 * u) * np.cos(2 * np.pi * f2 * (xx * np.cos(ang + 0.2) + yy * np.sin(ang + 0.2)))
        pic += (0.12 * moire)[..., None]
        if spoof_type == 7:  # PC: scanlines
            pic *= (1 - 0.12 * ((yy.astype(int) % 3) == 0))[..., None]
        bezel = {7: 0.03, 8: 0.05, 9: 0.08}[spoof_type]
        b = max(2, int(bezel * W))
        frame = inside.copy()
        frame[my0 + b:my1 - b, mx0 + b:mx1 - b] = False
        pic[frame] = 0.04
        reflect = _glare(rng, H, W, rng.uniform(0.35, 0.7)) * inside[..., None]
    else:  # masks: a wearer behind a cut-out / moulded face
        wearer = _background(rng, H, W, outdoor)
        other = dict(subj, skin=np.array([0.93, 0.76, 0.62]) * rng.uniform(0.55, 1.05))
        _face(rng, wearer, other, attrs, cx, cy, rx)
        fe = _ellipse(yy, xx, cy, cx, ry, rx)
        face = clean
        clean = wearer.copy()
        clean[fe < 1] = face[fe < 1]  # the wearer behind a perfect replica of the subject's face
        if spoof_type == 10:  # 3D mask: smooth plastic, glossy highlights
            plastic = subj["skin"] * 0.9 + 0.08
            z = np.sqrt(np.clip(1 - fe, 0, 1))
            pic = wearer.copy()
            pic[fe < 1] = (plastic[None, :] * (0.7 + 0.3 * z[fe < 1, None]))
            reflect = _glare(rng, H, W, 0.6) * (fe < 1)[..., None] * 0.8
        else:
            printed = pic * 0.7 + pic.mean(2, keepdims=True) * 0.3
            printed *= (1 - 0.25 * _halftone(H, W, 3.2, rng.uniform(0, np.pi)))[..., None]
            if spoof_type == 4:
                region = fe < 1.05
            elif spoof_type == 5:
                region = (fe < 1.05) | ((yy > cy + 0.8 * ry) & (np.abs(xx - cx) < 2 * rx))
            else:  # region mask: the upper or the lower half of the face
                region = (fe < 1.05) & ((yy < cy) if rng.random() < 0.5 else (yy >= cy))
            ey = cy - 0.15 * ry
            holes = (_ellipse(yy, xx, ey, cx - 0.42 * rx, 0.08 * ry, 0.15 * rx) < 1) | \
                    (_ellipse(yy, xx, ey, cx + 0.42 * rx, 0.08 * ry, 0.15 * rx) < 1)
            pic = wearer.copy()
            use = region & ~holes
            pic[use] = printed[use]
            edge = region & (_ellipse(yy, xx, cy, cx, ry * 0.97, rx * 0.97) >= 1)
            pic[edge] = 0.97
        inside = np.ones((H, W), bool)
    pic = clean + cue * (pic - clean)
    reflect = reflect * cue
    img[inside] = pic[inside]
    img += reflect
    img = _illuminate(rng, img, illum, ~inside if inside.mean() < 0.95 else np.ones((H, W), bool))
    img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    return np.clip(img, 0, 1), None, np.clip(reflect, 0, 1), box, attrs


# ------------------------------------------------------------------------------------------
# writing


def _to_u8(x):
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def _box_line(rng, box, W, H, kind: str) -> str:
    x, y, w, h = box
    vals = [x * 224 / W, y * 224 / H, w * 224 / W, h * 224 / H]
    score = rng.uniform(0.9, 0.9999)
    if kind == "empty":
        return ""
    if kind == "malformed":
        return f"{vals[0]:.0f} {vals[1]:.0f} {vals[2]:.0f}\n"
    if kind == "negative":  # the face box slid off the top edge, as in issue #31
        vals[1] = -rng.uniform(3, 12)
    if kind == "negative_size":  # a box the official formulas turn into an empty crop
        vals[2] = -vals[2]
    return " ".join(f"{v:.0f}" for v in vals) + f" {score:.7f}\n"


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
    need = [out / "metas" / "intra_test" / f"{s}_label.json" for s in ("train", "test")]
    return all(p.is_file() for p in need) and \
        sum(1 for _ in (out / "Data").rglob("*.jpg")) == manifest.get("counts", {}).get("jpg_files")


def make_toy_dataset(out: os.PathLike = DEFAULT_OUT, seed: int = 0, train_subjects: int = 40,
                     test_subjects: int = 14, live_per_subject: int = 6, spoof_per_subject: int = 14,
                     force: bool = False, verbose: bool = False, cue: float = DEFAULT_CUE) -> Path:
    """Write the toy dataset under ``out`` (see the module docstring); returns ``out``."""
    out = Path(out)
    settings = _settings(seed, train_subjects, test_subjects, live_per_subject, spoof_per_subject, cue)
    if not 0.0 <= cue <= 1.0:
        raise ValueError(f"cue strength {cue} outside [0, 1]")
    if train_subjects < 4 or test_subjects < 2 or live_per_subject < 1 or spoof_per_subject < 1:
        raise ValueError("need >= 4 train subjects, >= 2 test subjects, >= 1 live and spoof image each")
    if not force and _up_to_date(out, settings):
        if verbose:
            print(f"toy data up to date: {out}")
        return out
    t0 = time.time()
    (out / MANIFEST).unlink(missing_ok=True)
    for old in list((out / "Data").rglob("*")) if (out / "Data").is_dir() else []:
        if old.is_file() and (old.suffix in (".jpg", ".png") or old.name.endswith("_BB.txt")):
            old.unlink()

    rng = np.random.default_rng(seed)
    ids = rng.choice(np.arange(1, 10178), size=train_subjects + test_subjects, replace=False)
    splits = {"train": sorted(int(i) for i in ids[:train_subjects]),
              "test": sorted(int(i) for i in ids[train_subjects:])}
    labels = {"train": {}, "test": {}}
    counts = {"jpg_files": 0, "unlabeled": 0, "missing_image": 0, "depth_maps": 0, "reflect_maps": 0,
              "empty": 0, "negative": 0, "negative_size": 0, "malformed": 0, "missing_bbox": 0}
    n = 0
    for split, subjects in splits.items():
        for sid in subjects:
            subj = _subject(rng)
            kinds = [0] * live_per_subject + [int(rng.choice(SPOOF_DRAW, p=SPOOF_P / SPOOF_P.sum()))
                                              for _ in range(spoof_per_subject)]
            for k, stype in enumerate(kinds):
                n += 1
                W, H = int(rng.integers(128, 177)), int(rng.integers(128, 177))
                capture = int(rng.choice([1, 2, 3, 4], p=[0.4, 0.2, 0.2, 0.2]))
                illum = 0 if stype == 0 else capture  # the label: 0 (Live) on live images
                outdoor = bool(rng.random() < 0.4)
                env = 0 if stype == 0 else (2 if outdoor else 1)
                img, depth, reflect, box, attrs = _render(rng, subj, stype, capture, outdoor, H, W, cue)
                kind = "live" if stype == 0 else "spoof"
                folder = out / "Data" / split / str(sid) / kind
                folder.mkdir(parents=True, exist_ok=True)
                name = f"{n:06d}"
                rel = f"Data/{split}/{sid}/{kind}/{name}.jpg"
                Image.fromarray(_to_u8(img)).save(folder / f"{name}.jpg", quality=92)
                counts["jpg_files"] += 1
                unlabeled = k == 0 and sid == subjects[0]  # on disk, held out of the labels
                r = rng.random()
                bkind = "ok" if unlabeled else (
                    "empty" if r < 0.03 else "negative" if r < 0.06 else "negative_size" if r < 0.07
                    else "malformed" if r < 0.075 else "missing_bbox" if r < 0.08 else "ok")
                if bkind != "missing_bbox":
                    (folder / f"{name}_BB.txt").write_text(_box_line(rng, box, W, H, bkind))
                if bkind != "ok":
                    counts[bkind] += 1
                if depth is not None and rng.random() < 0.8 and not unlabeled:
                    Image.fromarray(_to_u8(depth)).save(folder / f"{name}_depth.png")
                    counts["depth_maps"] += 1
                if reflect is not None and rng.random() < 0.8 and not unlabeled:
                    Image.fromarray(_to_u8(reflect)).save(folder / f"{name}_reflect.png")
                    counts["reflect_maps"] += 1
                if unlabeled:
                    counts["unlabeled"] += 1
                    continue
                labels[split][rel] = [int(v) for v in (attrs if stype == 0 else np.zeros(40, int))] + \
                    [stype, illum, env, int(stype != 0)]
        # a labelled image that is not on disk
        ghost = f"Data/{split}/{subjects[-1]}/live/999999.jpg"
        labels[split][ghost] = [0] * 44
        counts["missing_image"] += 1

    metas = out / "metas"
    _write_json(metas / "intra_test" / "train_label.json", labels["train"])
    _write_json(metas / "intra_test" / "test_label.json", labels["test"])
    # toy protocol 1 (cross-illumination): train on live + Normal / Strong spoofs, test on all
    _write_json(metas / "protocol1" / "train_label.json",
                {k: v for k, v in labels["train"].items() if v[41] in (0, 1, 2)})
    _write_json(metas / "protocol1" / "test_label.json", labels["test"])
    # toy protocol 2 (unseen medium): train without screens, test on live + screens
    p2 = metas / "protocol2" / "test_on_screen"
    _write_json(p2 / "train_label.json", {k: v for k, v in labels["train"].items() if v[40] not in SCREEN})
    _write_json(p2 / "test_label.json", {k: v for k, v in labels["test"].items() if v[40] in (0, *SCREEN)})
    manifest = {"settings": settings, "counts": counts,
                "labelled": {s: len(v) for s, v in labels.items()},
                "subjects": {s: len(v) for s, v in splits.items()}}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    if verbose:
        print(f"wrote toy data: {out} ({counts['jpg_files']} images) in {time.time() - t0:.1f} s")
    return out


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--train-subjects", type=int, default=40, help="subjects in Data/train")
    p.add_argument("--test-subjects", type=int, default=14, help="subjects in Data/test")
    p.add_argument("--live-per-subject", type=int, default=6, help="live images per subject")
    p.add_argument("--spoof-per-subject", type=int, default=14, help="spoof images per subject")
    p.add_argument("--cue", type=float, default=DEFAULT_CUE, help="strength of what a spoof medium adds to the "
                   "picture (print, screen, mask artefacts, reflections): 1 = full, 0 = a perfect replica")
    p.add_argument("--force", action="store_true", help="rewrite even when up to date")
    return p


def main(argv=None) -> int:
    a = get_args_parser().parse_args(argv)
    make_toy_dataset(a.out, a.seed, a.train_subjects, a.test_subjects, a.live_per_subject,
                     a.spoof_per_subject, a.force, verbose=True, cue=a.cue)
    return 0


if __name__ == "__main__":
    sys.exit(main())
