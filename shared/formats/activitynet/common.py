"""What every ActivityNet-family reader shares: the error type, JSON / CSV opening, and the checks
of a number, a segment and an annotation list, each naming the file and the place at fault.

They are public so that a package reading a related file (bsnpp's BSN / THUMOS annotation files)
validates with the same rules and messages.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np

__all__ = ["FormatError", "PathLike", "PathOrDict", "describe", "fail", "open_text", "load_json",
           "read_csv_rows", "check_number", "csv_number", "check_segment", "check_annotations",
           "normalize_video_id"]

PathLike = Union[str, os.PathLike]
PathOrDict = Union[str, os.PathLike, Mapping]


class FormatError(ValueError):
    """A file does not follow its format; the message names the file and the video / key."""


def describe(src: Any) -> str:
    """The name of a source in messages: the path, or `<dict>` for an in-memory document."""
    return "<dict>" if isinstance(src, Mapping) else str(src)


def fail(src: Any, msg: str) -> FormatError:
    """A FormatError whose message starts with the source."""
    return FormatError(f"{describe(src)}: {msg}")


def normalize_video_id(video_id: str) -> str:
    """Strip one leading ``"v_"`` (BSN/BMN's file-name prefix) from a video id.

    ``"v_QOlSCBRmfWY" -> "QOlSCBRmfWY"``; ids without the prefix are returned unchanged. Apply it
    only to names known to carry the prefix (BSN's files): a raw id may itself start with "v_".
    """
    video_id = str(video_id)
    return video_id[2:] if video_id.startswith("v_") else video_id


def open_text(path: PathLike):
    """A text handle on a file, transparently gunzipped for ``.gz``; FileNotFoundError names it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8", newline="")


def load_json(src: PathOrDict) -> Mapping:
    """Parse a JSON object from a path (``.json`` or ``.json.gz``); a mapping passes through.
    Raises :class:`FormatError` naming the file when it is not valid JSON or not an object."""
    if isinstance(src, Mapping):
        return src
    if not isinstance(src, (str, os.PathLike)):
        raise TypeError(f"expected a path or a dict, got {type(src).__name__}")
    with open_text(src) as f:
        try:
            data = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError, EOFError, OSError) as e:
            raise fail(src, f"not valid JSON ({e})") from None
    if not isinstance(data, Mapping):
        raise fail(src, f"expected a JSON object at the top level, got {type(data).__name__}")
    return data


def read_csv_rows(path: PathLike) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a CSV file; blank lines skipped, every row as wide as the header."""
    with open_text(path) as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if not rows:
        raise fail(path, "empty file (expected a header line)")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise fail(path, f"line {i + 2}: {len(r)} fields, the header has {len(header)}")
    return header, body


def check_number(src: Any, value: Any, where: str, *, integer: bool = False, nonneg: bool = False):
    """A finite JSON number (bools and strings refused) as float, or int with `integer`."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise fail(src, f"{where}: expected a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise fail(src, f"{where}: expected a finite number, got {value!r}")
    if nonneg and v < 0:
        raise fail(src, f"{where}: expected a non-negative number, got {value!r}")
    if integer:
        if v != int(v):
            raise fail(src, f"{where}: expected an integer, got {value!r}")
        return int(v)
    return v


def csv_number(path: Any, text: str, where: str, *, integer: bool = False):
    """A finite number written in a CSV field, as float (or int with `integer`)."""
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise fail(path, f"{where}: expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise fail(path, f"{where}: expected a finite number, got {text!r}")
    if integer:
        if v != int(v):
            raise fail(path, f"{where}: expected an integer, got {text!r}")
        return int(v)
    return v


def check_segment(src: Any, seg: Any, where: str, ordered: bool = True) -> tuple[float, float]:
    """A ``[start, end]`` pair of finite numbers; with `ordered`, ``start <= end``."""
    if isinstance(seg, (str, bytes)) or not isinstance(seg, (Sequence, np.ndarray)) or len(seg) != 2:
        raise fail(src, f"{where}: 'segment' must be a list [start, end], got {seg!r}")
    s = check_number(src, seg[0], f"{where} segment start")
    e = check_number(src, seg[1], f"{where} segment end")
    if ordered and e < s:
        raise fail(src, f"{where}: segment end {e} is before its start {s}")
    return s, e


def check_annotations(src: Any, annos: Any, where: str, ordered: bool = True) -> list[tuple[float, float, str]]:
    """An ``annotations`` list of ``{"segment": [s, e], "label": str}`` -> ``[(s, e, label)]``
    (``None`` or absent: ``[]``)."""
    if annos is None:
        return []
    if not isinstance(annos, list):
        raise fail(src, f"{where}: 'annotations' must be a list, got {type(annos).__name__}")
    out = []
    for j, a in enumerate(annos):
        w = f"{where} annotation {j}"
        if not isinstance(a, Mapping):
            raise fail(src, f"{w}: expected an object, got {a!r}")
        for key in ("segment", "label"):
            if key not in a:
                raise fail(src, f"{w}: missing key {key!r}")
        if not isinstance(a["label"], str):
            raise fail(src, f"{w}: 'label' must be a string, got {a['label']!r}")
        s, e = check_segment(src, a["segment"], w, ordered)
        out.append((s, e, a["label"]))
    return out
