"""Readers of the two on-disk layouts: COCAS+ lists and Market-1501 folders.

COCAS+ (the layout of COCAS's official extension; paths relative to the root, fields separated by
commas or white space, blank lines and `#` comments skipped)::

    images/...            person boxes          templates/...   clothes templates
    train.txt             image_path template_path pid clothes_id [camera_id]   (or --train-list F)
    query.txt             image_path template_path pid clothes_id camera_id
    gallery.txt           image_path pid clothes_id camera_id
    images_desensitized/  the same tree with faces and background blurred (--variant desensitized)
    parsing/<image>.png   LIP human-parsing labels (<image>: the image path without `images/`)

A query pairs a person image with the template of the outfit it searches for; its clothes_id is
the query image's own outfit. Camera ids are 1-based (camid = camera_id - 1).

Market-1501: `bounding_box_train/`, `bounding_box_test/`, `query/`, files named
`<pid>_c<cam>s<seq>_<frame>_<idx>.jpg`. pid -1 (junk) is dropped and counted; pid 0 (distractors) is
kept in the gallery only; camid = cam - 1; training pids are relabelled 0..N-1; files that are
not JPEG are ignored (Thumbs.db, .txt).

Every split is held as compact arrays (`Split`), not per-image dicts. Errors name the file and the
line (or the file name) and the problem.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["DataError", "Split", "Dataset", "load_dataset", "image_path", "parse_cocas_list",
           "parse_market_folder", "VARIANTS"]

VARIANTS = {"raw": "images", "desensitized": "images_desensitized"}
MARKET_NAME = re.compile(r"^(-1|\d+)_c(\d+)s(\d+)_(\d+)_(\d+)\.jpg$")
JPEG_SUFFIXES = (".jpg", ".jpeg")


class DataError(ValueError):
    """A dataset file that cannot be used, naming the file (and line) and the problem."""


@dataclass
class Split:
    """One split: root-relative image paths and aligned label arrays.

    `pids` are the dataset's identities; `labels` (training only) their contiguous relabelling;
    `camids` are 0-based (-1 where the list gives no camera); `templates` the template path of
    each item (COCAS train and query) or None.
    """
    name: str
    files: list
    pids: np.ndarray
    camids: np.ndarray
    clothes: np.ndarray
    templates: list | None = None
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.files)

    @property
    def num_ids(self) -> int:
        return int(np.unique(self.pids).size)

    def relabel(self) -> Split:
        _, inverse = np.unique(self.pids, return_inverse=True)
        self.labels = inverse.astype(np.int64).reshape(-1)
        return self


@dataclass
class Dataset:
    name: str
    root: Path
    variant: str
    splits: dict
    report: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return int(self.splits["train"].labels.max()) + 1 if "train" in self.splits else 0


def image_path(root: Path, rel: str, variant: str = "raw") -> Path:
    """Where an image listed as `rel` lives for the image variant (raw / desensitized)."""
    if variant == "raw":
        return Path(root) / rel
    parts = Path(rel).parts
    tail = Path(*parts[1:]) if parts and parts[0] == VARIANTS["raw"] else Path(rel)
    return Path(root) / VARIANTS[variant] / tail


def _int(value: str, what: str, where: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DataError(f"{where}: {what} {value!r} is not an integer") from None


def parse_cocas_list(path, root, kind: str, variant: str = "raw", check_files: bool = True,
                     missing_templates: list | None = None) -> Split:
    """Read one COCAS+ list (`kind`: train, query or gallery).

    Field counts: train 4 or 5 (camera optional), query 5, gallery 4. With `check_files`, every
    image (of `variant`) and template must exist; a missing template raises unless a list is
    passed as `missing_templates`, which then collects them (check_data.py counts them).
    """
    path, root = Path(path), Path(root)
    if not path.is_file():
        raise DataError(f"{path}: list file not found")
    has_template = kind in ("train", "query")
    counts = {"train": (4, 5), "query": (5,), "gallery": (4,)}[kind]
    files, templates, pids, camids, clothes = [], [], [], [], []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{n}"
        f = [x for x in re.split(r"[,\s]+", line) if x]
        if len(f) not in counts:
            want = " or ".join(map(str, counts))
            layout = {"train": "image_path template_path pid clothes_id [camera_id]",
                      "query": "image_path template_path pid clothes_id camera_id",
                      "gallery": "image_path pid clothes_id camera_id"}[kind]
            raise DataError(f"{where}: {len(f)} fields, expected {want} ({layout})")
        img = f[0]
        rest = f[2:] if has_template else f[1:]
        pid = _int(rest[0], "pid", where)
        cid = _int(rest[1], "clothes_id", where)
        cam = _int(rest[2], "camera_id", where) if len(rest) > 2 else None
        if cam is not None and cam < 1:
            raise DataError(f"{where}: camera_id {cam}: camera ids are 1-based (camid = camera_id - 1)")
        if check_files:
            p = image_path(root, img, variant)
            if not p.is_file():
                raise DataError(f"{where}: image {p} not found")
            if has_template and not (root / f[1]).is_file():
                if missing_templates is None:
                    raise DataError(f"{where}: template {root / f[1]} not found")
                missing_templates.append(f"{where}: {f[1]}")
        files.append(img)
        if has_template:
            templates.append(f[1])
        pids.append(pid)
        clothes.append(cid)
        camids.append(cam - 1 if cam is not None else -1)
    if not files:
        raise DataError(f"{path}: no entries")
    return Split(kind, files, np.asarray(pids, np.int64), np.asarray(camids, np.int64),
                 np.asarray(clothes, np.int64), templates if has_template else None)


def parse_market_folder(folder, root, kind: str, report: dict) -> Split:
    """Read one Market-1501 folder: junk (-1) dropped everywhere, distractors (0) kept in the
    gallery only; both counted in `report` (`junk_skipped`, `distractors`, `ignored_files`)."""
    folder, root = Path(folder), Path(root)
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found (Market-1501 layout: bounding_box_train/, "
                        f"bounding_box_test/, query/)")
    files, pids, camids = [], [], []
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.suffix.lower() not in JPEG_SUFFIXES:
            report["ignored_files"] = report.get("ignored_files", 0) + 1
            continue
        m = MARKET_NAME.match(p.name)
        if m is None:
            raise DataError(f"{p}: not a Market-1501 name <pid>_c<cam>s<seq>_<frame>_<idx>.jpg")
        pid, cam = int(m.group(1)), int(m.group(2))
        if cam < 1:
            raise DataError(f"{p}: camera c{cam}: Market-1501 cameras are numbered from 1")
        if pid == -1 or (pid == 0 and kind != "gallery"):
            report["junk_skipped"] = report.get("junk_skipped", 0) + 1
            continue
        if pid == 0:
            report["distractors"] = report.get("distractors", 0) + 1
        files.append(str(p.relative_to(root)))
        pids.append(pid)
        camids.append(cam - 1)
    if not files:
        raise DataError(f"{folder}: no Market-1501 images")
    n = len(files)
    return Split(kind, files, np.asarray(pids, np.int64), np.asarray(camids, np.int64), np.full(n, -1, np.int64))


def load_dataset(name: str, root, variant: str = "raw", train_list: str = "", splits=("train", "query", "gallery"),
                 check_files: bool = True, missing_templates: list | None = None) -> Dataset:
    """The requested splits of a COCAS+ or Market-1501 root, training ids relabelled, with a
    report of counts (`check_data.py` prints it)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset root not found")
    if variant not in VARIANTS:
        raise DataError(f"--variant {variant!r}: expected one of {sorted(VARIANTS)}")
    report = {"junk_skipped": 0, "distractors": 0}
    out = {}
    if name == "cocas":
        lists = {"train": root / (train_list or "train.txt"), "query": root / "query.txt", "gallery": root / "gallery.txt"}
        for s in splits:  # a relative --train-list is relative to the root (an absolute one stays)
            out[s] = parse_cocas_list(lists[s], root, s, variant, check_files, missing_templates)
    elif name == "market1501":
        if variant != "raw":
            raise DataError("Market-1501 has no desensitized images: use --variant raw")
        folders = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
        for s in splits:
            out[s] = parse_market_folder(root / folders[s], root, s, report)
    else:
        raise DataError(f"--dataset {name!r}: expected cocas or market1501")
    if "train" in out:
        out["train"].relabel()
    return Dataset(name, root, variant, out, report)
