"""Write BSN++'s toy dataset: ActivityNet-1.3 on-disk formats, synthetic snippet features.

``python toy.py [--out data/toy/bsnpp] [--seed 0] [--videos 400] [--channels 32] [--force]``
(``make bsnpp-data`` runs it from ``bsnpp/``; the default ``--out`` is ``<repo>/data/toy/bsnpp``
wherever it is run from). Deterministic from the seed (one ``numpy.random.Generator``); a second
run with the same settings finds ``manifest.json`` and writes nothing.

Files written under ``--out``:

* ``activity_net.v1-3.min.json`` -- the official ground-truth layout (``version``, ``taxonomy``,
  ``database`` with ``duration``, ``subset`` training / validation (3 : 1), ``resolution``,
  ``url``, ``annotations [{segment, label}]``); 5 classes.
* ``video_info_new.csv`` and ``anet_anno_action.json`` -- BSN/BMN's preprocessed annotations for
  the same videos (``v_<id>``; ``featureFrame = 16 * L``, ``numFrame = featureFrame + 0..15``).
* ``csv_features/v_<id>.csv`` -- header ``f0..f{C-1}``, one row per snippet, **variable length**
  L in [48, 200] (about proportional to the duration), so the rescaling to T runs.
* ``manifest.json`` -- the settings and file counts (written last).

Videos last 30-240 s and hold 1-4 non-overlapping segments of one class, from ~2 % to ~80 % of
the video (log-uniform). Features (per snippet, C >= 8 channels): N(0, 1) background noise; a
class signature on a few channels (amplitude ~1, random signs), weighted by the fraction of the
snippet inside the action and modulated by a slow drift; weak blurred boundary cues (Gaussian
transients of amplitude ~1.5, width 0.8-1.6 snippets, jittered by ~0.7 snippets) on two "start"
and two "end" channels; distractor bursts outside the actions (a half-strength signature of a
random class, or a lone boundary transient); finally a per-video gain (0.7-1.3) and per-channel
offset (N(0, 0.5)). Actions are detectable from context, but single snippets are ambiguous.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "data" / "toy" / "bsnpp"
FORMAT_VERSION = 1
CLASSES = ("Long jump", "Playing guitar", "Making a cake", "Walking the dog", "Surfing")
SNIPPET_FRAMES = 16  # BSN: one TSN snippet per 16 frames
GT_FILE = "activity_net.v1-3.min.json"
VIDEO_INFO_FILE = "video_info_new.csv"
ANNO_FILE = "anet_anno_action.json"
FEATURE_DIR = "csv_features"
MANIFEST = "manifest.json"

_ID_FIRST = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_ID_REST = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def _settings(seed: int, videos: int, channels: int) -> dict:
    return {"generator": "bsnpp.toy", "format_version": FORMAT_VERSION, "seed": int(seed),
            "videos": int(videos), "channels": int(channels)}


def _video_ids(rng: np.random.Generator, n: int) -> list:
    ids, seen = [], set()
    while len(ids) < n:
        first = _ID_FIRST[rng.integers(len(_ID_FIRST))]
        rest = "".join(_ID_REST[i] for i in rng.integers(len(_ID_REST), size=10))
        vid = first + rest
        if vid not in seen:
            seen.add(vid)
            ids.append(vid)
    return ids


def _segments(rng: np.random.Generator, duration: float) -> list:
    """1-4 non-overlapping segments (fractions of the video), log-uniform lengths 2 %..80 %."""
    n = int(rng.choice([1, 2, 3, 4], p=[0.45, 0.25, 0.18, 0.12]))
    frac = np.exp(rng.uniform(np.log(0.02), np.log(0.8), size=n))
    min_gap = 0.01
    budget = 0.9 - (n - 1) * min_gap
    if frac.sum() > budget:
        frac *= budget / frac.sum()
    free = 1.0 - frac.sum() - (n - 1) * min_gap
    gaps = rng.dirichlet(np.ones(n + 1)) * free
    if rng.random() < 0.1:  # sometimes the action starts with the video
        gaps[-1] += gaps[0]
        gaps[0] = 0.0
    segs, t = [], gaps[0]
    for i in range(n):
        s, e = t, t + frac[i]
        segs.append((round(s * duration, 2), round(min(e, 1.0) * duration, 2)))
        t = e + gaps[i + 1] + min_gap
    return segs


def _coverage(L: int, seg_snip: list) -> np.ndarray:
    """Fraction of each snippet [i, i+1) covered by the segments (given in snippet units)."""
    i = np.arange(L, dtype=np.float64)
    cov = np.zeros(L)
    for s, e in seg_snip:
        cov += np.clip(np.minimum(i + 1, e) - np.maximum(i, s), 0.0, 1.0)
    return np.clip(cov, 0.0, 1.0)


def _features(rng: np.random.Generator, L: int, C: int, cls: int, seg_snip: list,
              signatures: np.ndarray, cue_ch: np.ndarray, cue_sign: np.ndarray) -> np.ndarray:
    x = rng.standard_normal((L, C))
    pos = np.arange(L) + 0.5
    cov = _coverage(L, seg_snip)
    # slow drift of the action's strength
    freq, phase = rng.uniform(0.5, 2.0), rng.uniform(0, 2 * np.pi)
    drift = 1.0 + 0.3 * np.sin(2 * np.pi * freq * pos / L + phase)
    x += (cov * drift)[:, None] * signatures[cls][None, :]

    def bump(center, amp, width, channels):
        g = amp * np.exp(-0.5 * ((pos - center) / width) ** 2)
        x[:, channels] += g[:, None] * cue_sign[channels][None, :]

    for s, e in seg_snip:
        if s > 0.5:
            bump(s + rng.normal(0, 0.7), rng.uniform(1.0, 2.0), rng.uniform(0.8, 1.6), cue_ch[:2])
        if e < L - 0.5:
            bump(e + rng.normal(0, 0.7), rng.uniform(1.0, 2.0), rng.uniform(0.8, 1.6), cue_ch[2:])
    # distractor bursts in the background
    for _ in range(int(rng.poisson(1.0))):
        length = int(rng.integers(1, 6))
        start = int(rng.integers(0, max(1, L - length)))
        span = slice(start, start + length)
        if cov[max(0, start - 2):start + length + 2].any():
            continue
        if rng.random() < 0.6:
            other = int(rng.integers(len(signatures)))
            x[span] += rng.uniform(0.4, 0.8) * signatures[other][None, :]
        else:
            which = cue_ch[:2] if rng.random() < 0.5 else cue_ch[2:]
            bump(start + length / 2, rng.uniform(0.8, 1.5), rng.uniform(0.8, 1.6), which)
    gain = rng.uniform(0.7, 1.3)
    offset = rng.normal(0.0, 0.5, size=C)
    return gain * x + offset[None, :]


def _write_csv(path: Path, x: np.ndarray) -> None:
    header = ",".join(f"f{i}" for i in range(x.shape[1]))
    body = "\n".join(",".join(f"{v:.4f}" for v in row) for row in x)
    path.write_text(header + "\n" + body + "\n", encoding="utf-8")


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
    files = [out / GT_FILE, out / VIDEO_INFO_FILE, out / ANNO_FILE]
    feat = out / FEATURE_DIR
    return all(f.is_file() for f in files) and feat.is_dir() and \
        sum(1 for p in feat.glob("v_*.csv")) == settings["videos"]


def make_toy_dataset(out: os.PathLike = DEFAULT_OUT, seed: int = 0, videos: int = 400,
                     channels: int = 32, force: bool = False, verbose: bool = False) -> Path:
    """Write the toy dataset under ``out`` (see the module docstring); returns ``out``.

    Skips the work when ``out/manifest.json`` records the same settings and the files exist
    (``force`` rewrites). ``channels >= 8``.
    """
    out = Path(out)
    settings = _settings(seed, videos, channels)
    if videos < 4:
        raise ValueError(f"videos must be >= 4, got {videos}")
    if channels < 8:
        raise ValueError(f"channels must be >= 8 (signatures + boundary cues), got {channels}")
    if not force and _up_to_date(out, settings):
        if verbose:
            print(f"toy data up to date: {out} ({videos} videos, seed {seed})")
        return out
    t0 = time.time()
    feat_dir = out / FEATURE_DIR
    feat_dir.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)
    for old in feat_dir.glob("v_*.csv"):  # only our own files
        old.unlink()

    rng = np.random.default_rng(seed)
    n_sig = max(1, min(4, (channels - 4) // len(CLASSES)))
    signatures = np.zeros((len(CLASSES), channels))
    for c in range(len(CLASSES)):
        ch = np.arange(c * n_sig, (c + 1) * n_sig)
        signatures[c, ch] = rng.choice([-1.0, 1.0], size=n_sig) * rng.uniform(0.8, 1.2, size=n_sig)
    cue_ch = np.arange(len(CLASSES) * n_sig, len(CLASSES) * n_sig + 4)
    cue_sign = np.ones(channels)
    cue_sign[cue_ch] = rng.choice([-1.0, 1.0], size=4)

    ids = _video_ids(rng, videos)
    n_val = videos // 4
    subsets = np.array(["training"] * (videos - n_val) + ["validation"] * n_val)
    rng.shuffle(subsets)

    database, anno_action, info_rows = {}, {}, []
    for k, vid in enumerate(ids):
        duration = round(float(rng.uniform(30.0, 240.0)), 3)
        cls = int(rng.integers(len(CLASSES)))
        segs = _segments(rng, duration)
        L = int(np.clip(round(48 + (duration - 30.0) / 210.0 * 152 * rng.uniform(0.85, 1.15)),
                        48, 200))
        feature_frame = SNIPPET_FRAMES * L
        num_frame = feature_frame + int(rng.integers(0, SNIPPET_FRAMES))
        rfps = num_frame / duration
        feature_seconds = feature_frame / num_frame * duration
        seg_snip = [(s / feature_seconds * L, e / feature_seconds * L) for s, e in segs]
        x = _features(rng, L, channels, cls, seg_snip, signatures, cue_ch, cue_sign)
        _write_csv(feat_dir / f"v_{vid}.csv", x)

        annotations = [{"segment": [s, e], "label": CLASSES[cls]} for s, e in segs]
        database[vid] = {"subset": str(subsets[k]), "duration": duration,
                         "resolution": "320x240", "url": f"https://www.youtube.com/watch?v={vid}",
                         "annotations": annotations}
        anno_action[f"v_{vid}"] = {"duration_second": duration, "duration_frame": num_frame,
                                   "annotations": annotations, "feature_frame": feature_frame}
        info_rows.append(f"v_{vid},{num_frame},{duration},{float(round(rfps))},{rfps:.10g},"
                         f"{subsets[k]},{feature_frame}")

    taxonomy = [{"nodeId": 0, "nodeName": "Root", "parentId": None, "parentName": None}]
    taxonomy += [{"nodeId": i + 1, "nodeName": c, "parentId": 0, "parentName": "Root"}
                 for i, c in enumerate(CLASSES)]
    gt = {"version": "VERSION 1.3", "taxonomy": taxonomy, "database": database}
    (out / GT_FILE).write_text(json.dumps(gt), encoding="utf-8")
    (out / ANNO_FILE).write_text(json.dumps(anno_action), encoding="utf-8")
    (out / VIDEO_INFO_FILE).write_text(
        "video,numFrame,seconds,fps,rfps,subset,featureFrame\n" + "\n".join(info_rows) + "\n",
        encoding="utf-8")
    manifest = {"settings": settings, "classes": list(CLASSES),
                "files": {"ground_truth": GT_FILE, "video_info": VIDEO_INFO_FILE,
                          "anno_action": ANNO_FILE, "features": FEATURE_DIR + "/v_<id>.csv"},
                "counts": {"training": int((subsets == "training").sum()),
                           "validation": int((subsets == "validation").sum())}}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    if verbose:
        print(f"wrote toy data: {out} ({videos} videos, {channels} channels, seed {seed}) "
              f"in {time.time() - t0:.1f} s")
    return out


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--videos", type=int, default=400, help="number of videos")
    p.add_argument("--channels", type=int, default=32, help="feature channels C (>= 8)")
    p.add_argument("--force", action="store_true", help="rewrite even when up to date")
    return p


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    make_toy_dataset(args.out, args.seed, args.videos, args.channels, args.force, verbose=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
