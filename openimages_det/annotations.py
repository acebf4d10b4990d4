"""Readers of the Open Images CSV files, by column name (extra columns are ignored), with checks.

* class descriptions (``class-descriptions-boxable.csv``, ``challenge-2019-classes-description-500.csv``):
  ``LabelName,DisplayName`` rows, header optional (v4-v6 have none, v7 has one); or a TF OD API
  ``labelmap.pbtxt`` (``item { name: "/m/..." id: N display_name: "..." }``).
* boxes (``*-annotations-bbox.csv``, ``challenge-2019-*-detection-bbox.csv``): ImageID, LabelName,
  XMin, XMax, YMin, YMax (normalised to [0, 1]), IsGroupOf.
* image-level labels (``*-annotations-human-imagelabels-boxable.csv``,
  ``challenge-2019-*-detection-human-imagelabels.csv``): ImageID, LabelName, Confidence (1 = verified
  present, 0 = verified absent).
* predictions (``predictions.csv``): ImageID, LabelName, Score, XMin, XMax, YMin, YMax.

ImageID and LabelName come back as pandas categoricals (one copy of each string, whatever the file's
size). Every reader accepts a path or a DataFrame and fails early with the file, the line and the value:
a missing column, an unknown LabelName (when a class list is given), a coordinate that is not a number
in [0, 1], a Confidence other than 0/1, a non-finite score. Lines are counted as in the file (the
header is line 1).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["AnnotationError", "read_classes", "read_class_descriptions", "read_labelmap", "read_boxes",
           "read_image_labels", "read_predictions", "BOX_COLUMNS", "LABEL_COLUMNS", "PREDICTION_COLUMNS"]

BOX_COLUMNS = ("ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax", "IsGroupOf")
LABEL_COLUMNS = ("ImageID", "LabelName", "Confidence")
PREDICTION_COLUMNS = ("ImageID", "LabelName", "Score", "XMin", "XMax", "YMin", "YMax")
COORDS = ("XMin", "XMax", "YMin", "YMax")


class AnnotationError(ValueError):
    """An annotation or prediction file that cannot be used, naming the file, line and value."""


def _name(src, what: str) -> str:
    return str(src) if isinstance(src, (str, os.PathLike)) else f"<{what} DataFrame>"


def _read(src, columns, what: str, dtypes: dict) -> tuple[pd.DataFrame, str]:
    """The named columns of a CSV path or DataFrame (a missing column is an error naming it)."""
    name = _name(src, what)
    if isinstance(src, pd.DataFrame):
        missing = [c for c in columns if c not in src.columns]
        if missing:
            raise AnnotationError(f"{name}: missing column(s) {missing} (has {list(src.columns)})")
        df = src.loc[:, list(columns)].reset_index(drop=True)
    else:
        path = Path(os.fspath(src))
        if not path.is_file():
            raise AnnotationError(f"{path}: {what} file not found")
        try:
            header = pd.read_csv(path, nrows=0).columns
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
            raise AnnotationError(f"{path}: not a readable CSV file ({e})") from None
        missing = [c for c in columns if c not in header]
        if missing:
            raise AnnotationError(f"{path}: missing column(s) {missing} in the header (has {list(header)})")
        try:
            # identifiers as categoricals: a 15M-row file keeps one copy of each string
            df = pd.read_csv(path, usecols=list(columns), dtype={c: "category" for c in ("ImageID", "LabelName")})
        except (ValueError, pd.errors.ParserError) as e:
            raise AnnotationError(f"{path}: cannot parse ({e})") from None
        df = df.loc[:, list(columns)]
    for c in ("ImageID", "LabelName"):
        if c in df.columns:
            if df[c].isna().any():
                i = int(np.flatnonzero(df[c].isna().to_numpy())[0])
                raise AnnotationError(f"{name}: line {i + 2}: empty {c}")
            if not isinstance(df[c].dtype, pd.CategoricalDtype):
                df[c] = df[c].astype(str).astype("category")
    for c, dt in dtypes.items():
        if c not in df.columns:
            continue
        vals = pd.to_numeric(df[c], errors="coerce")
        bad = vals.isna().to_numpy() & ~df[c].isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise AnnotationError(f"{name}: line {i + 2}: {c} = {df[c].iloc[i]!r} is not a number")
        df[c] = vals.astype(dt)
    return df, name


def _check_labels(df: pd.DataFrame, name: str, classes) -> None:
    if classes is None:
        return
    known = pd.Index(list(classes))
    bad = ~df["LabelName"].isin(known).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AnnotationError(f"{name}: line {i + 2}: unknown LabelName {df['LabelName'].iloc[i]!r} "
                              f"({int(bad.sum())} row(s) name labels outside the {len(known)} classes)")


def _check_finite(df, name, columns) -> None:
    for c in columns:
        v = df[c].to_numpy()
        bad = ~np.isfinite(v)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise AnnotationError(f"{name}: line {i + 2}: {c} = {float(v[i])!r} is not a finite number")


def read_boxes(src, classes=None, float_dtype=np.float64) -> pd.DataFrame:
    """Boxes: columns ``BOX_COLUMNS``; coordinates must be numbers in [0, 1]; IsGroupOf an integer.

    Degenerate boxes (XMin >= XMax or YMin >= YMax) are kept: the metric keeps them as the official
    one does, and the training data skips and counts them (``data.py``).
    """
    df, name = _read(src, BOX_COLUMNS, "boxes", {**{c: float_dtype for c in COORDS}, "IsGroupOf": np.float64})
    _check_labels(df, name, classes)
    _check_finite(df, name, (*COORDS, "IsGroupOf"))
    for c in COORDS:
        v = df[c].to_numpy()
        bad = (v < 0) | (v > 1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise AnnotationError(f"{name}: line {i + 2}: {c} = {float(v[i])!r} is outside [0, 1] "
                                  f"(box coordinates are normalised by the image size)")
    g = df["IsGroupOf"].to_numpy()
    bad = g != np.round(g)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AnnotationError(f"{name}: line {i + 2}: IsGroupOf = {float(g[i])!r} is not an integer")
    df["IsGroupOf"] = g.astype(np.int8)
    return df


def read_image_labels(src, classes=None) -> pd.DataFrame:
    """Human-verified image-level labels: ``LABEL_COLUMNS``, Confidence 0 or 1."""
    df, name = _read(src, LABEL_COLUMNS, "image labels", {"Confidence": np.float64})
    _check_labels(df, name, classes)
    c = df["Confidence"].to_numpy()
    bad = (c != 0) & (c != 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AnnotationError(f"{name}: line {i + 2}: Confidence = {float(c[i])!r}; human-verified labels are 0 or 1")
    df["Confidence"] = c.astype(np.int8)
    return df


def read_predictions(src, classes=None) -> pd.DataFrame:
    """Detections: ``PREDICTION_COLUMNS``, finite scores and coordinates (any range: boxes with
    XMin >= XMax or YMin >= YMax are dropped by the metric, as the official one drops them)."""
    df, name = _read(src, PREDICTION_COLUMNS, "predictions", {c: np.float64 for c in ("Score", *COORDS)})
    _check_labels(df, name, classes)
    _check_finite(df, name, ("Score", *COORDS))
    return df


def read_class_descriptions(path) -> list[tuple[str, str]]:
    """``[(LabelName, DisplayName), ...]`` in file order; a ``LabelName,DisplayName`` header is optional."""
    path = Path(os.fspath(path))
    if not path.is_file():
        raise AnnotationError(f"{path}: class descriptions file not found")
    df = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
    if df.shape[1] < 2:
        raise AnnotationError(f"{path}: expected two columns LabelName,DisplayName, got {df.shape[1]}")
    start = 1 if len(df) and df.iloc[0, 0] == "LabelName" else 0
    rows = [(str(a), str(b)) for a, b in zip(df.iloc[start:, 0], df.iloc[start:, 1])]
    seen = set()
    for i, (mid, _) in enumerate(rows):
        if not mid:
            raise AnnotationError(f"{path}: line {i + start + 1}: empty LabelName")
        if mid in seen:
            raise AnnotationError(f"{path}: line {i + start + 1}: LabelName {mid!r} listed twice")
        seen.add(mid)
    if not rows:
        raise AnnotationError(f"{path}: no classes")
    return rows


_ITEM = re.compile(r"item\s*\{(.*?)\}", re.S)
_FIELD = re.compile(r"(\w+)\s*:\s*(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[-\w.]+)")


def read_labelmap(path) -> list[tuple[str, str]]:
    """A TF OD API ``labelmap.pbtxt``: ``[(name, display_name), ...]`` ordered by ``id`` (the
    evaluator's class order)."""
    path = Path(os.fspath(path))
    if not path.is_file():
        raise AnnotationError(f"{path}: labelmap file not found")
    items = []
    for k, m in enumerate(_ITEM.finditer(path.read_text())):
        fields = {f: v.strip("\"'") for f, v in _FIELD.findall(m.group(1))}
        if "name" not in fields or "id" not in fields:
            raise AnnotationError(f"{path}: item {k} lacks 'name' or 'id'")
        items.append((int(fields["id"]), fields["name"], fields.get("display_name", fields["name"])))
    if not items:
        raise AnnotationError(f"{path}: no 'item {{ ... }}' entries")
    ids = [i for i, _, _ in items]
    if len(set(ids)) != len(ids) or min(ids) < 1:
        raise AnnotationError(f"{path}: item ids must be unique and 1-indexed")
    return [(n, d) for _, n, d in sorted(items)]


def read_classes(path) -> list[tuple[str, str]]:
    """Class list from a class-descriptions CSV or a labelmap ``.pbtxt`` (by suffix)."""
    return read_labelmap(path) if str(path).endswith(".pbtxt") else read_class_descriptions(path)
