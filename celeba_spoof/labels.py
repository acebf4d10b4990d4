"""CelebA-Spoof labels: the 44-integer vector, the label files, and the train/val/test lists.

Label vector (the dataset's README and its maintainer, issue answers):

* ``[0:40]``  the 40 CelebA face attributes, CelebA order, 0/1 (all 0 on spoof images);
* ``[40]``    spoof type: 0 Live, 1 Photo, 2 Poster, 3 A4, 4 Face Mask, 5 Upper Body Mask,
  6 Region Mask, 7 PC, 8 Pad, 9 Phone, 10 3D Mask;
* ``[41]``    illumination: 0 Live, 1 Normal, 2 Strong, 3 Back, 4 Dark;
* ``[42]``    environment: 0 Live, 1 Indoor, 2 Outdoor;
* ``[43]``    0 live, 1 spoof.

Label files (``metas/<protocol>/``): ``train_label.json`` / ``test_label.json`` map a path relative
to the dataset root (``Data/train/4980/spoof/000003.jpg``) to the vector. A ``.txt`` list
(``<path> [<label>]`` per line) is read too: its optional second column is taken as the
live/spoof label in the vector's convention (0 live, 1 spoof); the full vector then comes from the
JSON of the same name when it exists, otherwise the auxiliary labels are unknown (-1, and those
loss terms skip the sample).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
    "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin",
    "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
    "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
    "Wearing_Necktie", "Young")
SPOOF_TYPES = ("Live", "Photo", "Poster", "A4", "Face Mask", "Upper Body Mask", "Region Mask",
               "PC", "Pad", "Phone", "3D Mask")
ILLUMINATIONS = ("Live", "Normal", "Strong", "Back", "Dark")
ENVIRONMENTS = ("Live", "Indoor", "Outdoor")
LABEL_LEN = 44
IDX_SPOOF_TYPE, IDX_ILLUMINATION, IDX_ENVIRONMENT, IDX_LIVE_SPOOF = 40, 41, 42, 43
_CLASS_COUNTS = {IDX_SPOOF_TYPE: len(SPOOF_TYPES), IDX_ILLUMINATION: len(ILLUMINATIONS),
                 IDX_ENVIRONMENT: len(ENVIRONMENTS), IDX_LIVE_SPOOF: 2}
_PATH_RE = re.compile(r"^Data/(?P<split>[^/]+)/(?P<subject>[^/]+)/(?P<kind>live|spoof)/[^/]+$")


class LabelError(ValueError):
    """A label file or vector that cannot be used, naming the file and the entry."""


@dataclass(frozen=True)
class Label:
    """One parsed label vector; -1 marks an unknown auxiliary label (txt lists without JSON)."""

    attributes: tuple  # 40 ints in {0, 1} (or -1)
    spoof_type: int
    illumination: int
    environment: int
    is_spoof: int

    def as_vector(self) -> list:
        return [*self.attributes, self.spoof_type, self.illumination, self.environment, self.is_spoof]


def parse_label(vector, where: str = "") -> Label:
    """Validate one 44-integer vector and split it into its parts (see the module docstring)."""
    loc = f"{where}: " if where else ""
    if not isinstance(vector, (list, tuple)) or len(vector) != LABEL_LEN:
        n = len(vector) if isinstance(vector, (list, tuple)) else type(vector).__name__
        raise LabelError(f"{loc}expected a list of {LABEL_LEN} integers, got {n}")
    try:
        vals = [int(v) for v in vector]
    except (TypeError, ValueError):
        raise LabelError(f"{loc}label vector holds non-integers: {vector!r}") from None
    if any(v != float(x) for v, x in zip(vals, vector)):
        raise LabelError(f"{loc}label vector holds non-integers: {vector!r}")
    if any(v not in (0, 1) for v in vals[:40]):
        raise LabelError(f"{loc}face attributes [0:40] must be 0/1, got {vals[:40]}")
    for idx, n in _CLASS_COUNTS.items():
        if not 0 <= vals[idx] < n:
            raise LabelError(f"{loc}label [{idx}] = {vals[idx]} is outside 0..{n - 1}")
    live = vals[IDX_LIVE_SPOOF] == 0
    if live != (vals[IDX_SPOOF_TYPE] == 0):
        raise LabelError(f"{loc}live/spoof [43] = {vals[43]} contradicts spoof type [40] = {vals[40]}")
    return Label(tuple(vals[:40]), vals[40], vals[41], vals[42], vals[43])


def unknown_label(is_spoof: int) -> Label:
    return Label((-1,) * 40, -1, -1, -1, int(is_spoof))


def path_info(rel: str) -> dict | None:
    """``Data/<split>/<subject>/<live|spoof>/<name>`` -> {split, subject, kind}; None otherwise."""
    m = _PATH_RE.match(rel)
    return m.groupdict() if m else None


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise LabelError(f"{path}: cannot read: {e}") from None
    except json.JSONDecodeError as e:
        raise LabelError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise LabelError(f"{path}: expected an object mapping image paths to 44-integer lists, "
                         f"got {type(data).__name__}")
    return data


def _read_txt(path: Path) -> dict:
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) > 2:
            raise LabelError(f"{path}:{n}: expected '<path> [<label>]', got {line!r}")
        label = None
        if len(parts) == 2:
            if parts[1] not in ("0", "1"):
                raise LabelError(f"{path}:{n}: label must be 0 (live) or 1 (spoof), got {parts[1]!r}")
            label = int(parts[1])
        out[parts[0]] = label
    return out


def load_label_file(path: str | Path, strict: bool = False) -> tuple[dict, list]:
    """Read a label list: ``({rel_path: Label}, [(rel_path, reason), ...bad entries])``.

    ``.json``: the official mapping. ``.txt``: ``<path> [<label>]`` lines, completed from the
    sibling ``.json`` when there is one. Bad entries (wrong length, values out of range, a txt line
    without label and no JSON) are returned, not raised, unless ``strict``.
    """
    path = Path(path)
    if not path.is_file():
        raise LabelError(f"{path}: label file not found")
    labels, bad = {}, []
    if path.suffix == ".json":
        raw = _read_json(path)
        for rel, vec in raw.items():
            try:
                labels[rel] = parse_label(vec, f"{path.name}[{rel!r}]")
            except LabelError as e:
                bad.append((rel, str(e)))
    else:
        rows = _read_txt(path)
        sibling = path.with_suffix(".json")
        full = load_label_file(sibling)[0] if sibling.is_file() else {}
        for rel, lab in rows.items():
            if rel in full:
                if lab is not None and lab != full[rel].is_spoof:
                    bad.append((rel, f"{path.name}: label {lab} disagrees with {sibling.name}"))
                    continue
                labels[rel] = full[rel]
            elif lab is not None:
                labels[rel] = unknown_label(lab)
            else:
                bad.append((rel, f"{path.name}: no label and no entry in {sibling.name}"))
    if strict and bad:
        raise LabelError(f"{path}: {len(bad)} bad entries, first: {bad[0][1]}")
    return labels, bad


def find_label_file(root: Path, protocol: str, split: str) -> Path:
    """``<root>/metas/<protocol>/<split>_label.json`` (or ``.txt``)."""
    base = Path(root) / "metas" / protocol
    cand = [base / f"{split}_label.json", base / f"{split}_label.txt"]
    for c in cand:
        if c.is_file():
            return c
    raise LabelError(f"no {split} label list for protocol {protocol!r}: looked for "
                     + ", ".join(str(c) for c in cand))


def split_val_subjects(rel_paths, fraction: float, seed: int = 0) -> set:
    """Hold out ``fraction`` of the training subjects (whole identities, so validation faces are
    unseen, as in the test split) with a seeded permutation of the sorted subject ids."""
    if fraction <= 0:
        return set()
    subjects = sorted({(path_info(r) or {}).get("subject", r.split("/")[0]) for r in rel_paths})
    if len(subjects) < 2:
        return set()
    perm = np.random.default_rng(seed).permutation(len(subjects))
    n = min(len(subjects) - 1, max(1, int(round(fraction * len(subjects)))))
    return {subjects[i] for i in perm[:n]}


def subject_of(rel: str) -> str:
    info = path_info(rel)
    return info["subject"] if info else rel.split("/")[0]
