"""Submission files, the official ActivityNet evaluators' input, read and written in one place.

Proposals and detections (detections carry a ``label``)::

    {"version": "VERSION 1.3",
     "results": {"<youtube id>": [{"segment": [s, e], "score": 0.9(, "label": "Ballet")}]},
     "external_data": {}}

Video-level classification scores (the shape of CUHK's ``cuhk_anet17_pred.json``)::

    {"version": "VERSION 1.3", "results": {"<youtube id>": [{"label": "Ballet", "score": 0.8}]},
     "external_data": {}}

Times are seconds; ids are the YouTube ids of the ground truth (no ``v_``).

Reading: :func:`load_submission` is the parser (columns in file order, the evaluators' input;
fast on a million rows: the per-row checks run only to name the row of a malformed file);
:func:`read_proposal_json` its per-video view; :func:`read_classification_json` the scores.
Writing: one builder and one writer per kind (:func:`proposal_submission` /
:func:`write_proposal_json`, ``detection_*``, ``classification_*``); every file is written
atomically (temporary file, then rename).
"""
from __future__ import annotations

import itertools
import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.formats.activitynet.common import (
    PathLike,
    PathOrDict,
    check_number,
    check_segment,
    describe,
    fail,
    load_json,
)

__all__ = ["Submission", "load_submission", "read_proposal_json", "read_classification_json",
           "proposal_submission", "detection_submission", "classification_submission", "write_submission",
           "write_proposal_json", "write_detection_json", "write_classification_json"]

VERSION = "VERSION 1.3"


def _numbers(values) -> bool:
    """Every value a real number (bools refused); one pass over the distinct types."""
    return all(issubclass(t, (int, float, np.integer, np.floating)) and not issubclass(t, (bool, np.bool_))
               for t in set(map(type, values)))


@dataclass
class Submission:
    """A proposal / detection file as columns, in file order (``results`` keys, then rows).

    ``counts[i]`` rows of video ``video_ids[i]``; ``segments`` [n, 2] float64; ``scores`` [n] as
    JSON typed them (int64 when every score is an integer, else float64: the dtype the official
    evaluators' DataFrame gives them); ``labels`` [n] (None entries for unlabelled rows) or None
    when labels were not read.
    """

    source: str
    video_ids: list
    counts: np.ndarray
    segments: np.ndarray
    scores: np.ndarray
    labels: list | None


def _results(data: Mapping, src: Any) -> Mapping:
    res = data.get("results")
    if res is None:
        raise fail(src, "missing top-level key 'results'")
    if not isinstance(res, Mapping):
        raise fail(src, f"'results' must be an object keyed by video id, got {type(res).__name__}")
    return res


def _bad_row(src, vid, rows, labels: str):
    """Raise the error that names the first malformed row of a video (the slow path)."""
    for j, r in enumerate(rows):
        w = f"video {vid!r} proposal {j}"
        if not isinstance(r, Mapping):
            raise fail(src, f"{w}: expected an object, got {r!r}")
        if "segment" not in r or "score" not in r:
            raise fail(src, f"{w}: needs keys 'segment' and 'score' (it lacks a key: has {sorted(r)})")
        check_segment(src, r["segment"], w, ordered=False)
        score = r["score"]
        if isinstance(score, float) and not math.isfinite(score):
            raise fail(src, f"{w} 'score': expected a finite number, got {'NaN' if score != score else score}")
        check_number(src, score, f"{w} 'score'")
        if labels == "required" and "label" not in r:
            raise fail(src, f"{w}: missing key 'label' (a detection file needs labels)")
        if labels != "ignore" and "label" in r and not isinstance(r["label"], str):
            raise fail(src, f"{w}: 'label' must be a string, got {r['label']!r}")
    raise AssertionError("unreachable: no malformed row found")  # pragma: no cover


def load_submission(src: PathOrDict, labels: str = "optional", exclude=(), ordered_segments: bool = True) -> Submission:
    """Read and validate a proposal or detection submission (path, ``.json.gz`` or parsed dict).

    labels: ``"required"`` (detections), ``"optional"`` (kept where present) or ``"ignore"``.
    exclude: video ids left out. ordered_segments: refuse ``end < start`` (the official
    evaluators do not check it; the metric passes False to score such files as they do).
    Segments must be pairs of finite numbers and scores finite numbers; a malformed file raises
    :class:`FormatError` naming the file, the video and the row.
    """
    if labels not in ("required", "optional", "ignore"):
        raise ValueError(f"labels must be required|optional|ignore, got {labels!r}")
    data = load_json(src)
    res = _results(data, src)
    names, counts, segs, scores, labs = [], [], [], [], []
    exclude = frozenset(exclude)
    for vid, rows in res.items():
        if vid in exclude:
            continue
        if not isinstance(rows, list):
            raise fail(src, f"results of video {vid!r}: expected a list of predictions, got {type(rows).__name__}")
        n0 = len(segs)
        try:
            segs += [r["segment"] for r in rows]
            scores += [r["score"] for r in rows]
            if labels == "required":
                labs += [r["label"] for r in rows]
            elif labels == "optional":
                labs += [r.get("label") for r in rows]
        except (KeyError, TypeError, AttributeError):
            _bad_row(src, vid, rows, labels)
        names.append(str(vid))
        counts.append(len(segs) - n0)
    counts = np.asarray(counts, dtype=np.int64)

    def locate(i: int):  # the (video, row) of flat row i, for messages
        v = int(np.searchsorted(np.cumsum(counts), i, side="right"))
        return names[v], i - int(counts[:v].sum())

    # C-level passes over the distinct types and lengths; the slow loop only names a bad row
    ok = (all(issubclass(t, (list, tuple, np.ndarray)) for t in set(map(type, segs)))
          and set(map(len, segs)) <= {2} and _numbers(itertools.chain.from_iterable(segs)))
    if not ok:
        for i, s in enumerate(segs):
            vid, j = locate(i)
            check_segment(src, s, f"video {vid!r} proposal {j}", ordered=False)
    seg = np.fromiter(itertools.chain.from_iterable(segs), dtype=np.float64, count=2 * len(segs)).reshape(-1, 2)
    bad = ~np.isfinite(seg).all(axis=1)
    if ordered_segments:
        bad |= seg[:, 1] < seg[:, 0]
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        vid, j = locate(i)
        check_segment(src, segs[i], f"video {vid!r} proposal {j}", ordered=ordered_segments)
    if not _numbers(scores):
        i = next(i for i, s in enumerate(scores) if not _numbers([s]))
        vid, j = locate(i)
        check_number(src, scores[i], f"video {vid!r} proposal {j} 'score'")
    sc = np.asarray(scores) if scores else np.zeros(0, dtype=np.float64)
    if sc.dtype.kind not in "iuf":  # integers beyond int64
        sc = sc.astype(np.float64)
    if sc.dtype.kind == "f" and not np.isfinite(sc).all():
        i = int(np.flatnonzero(~np.isfinite(sc))[0])
        vid, j = locate(i)
        raise fail(src, f"video {vid!r} proposal {j} 'score': expected a finite number, "
                        f"got {'NaN' if np.isnan(sc[i]) else sc[i]}")
    if labels != "ignore":
        def fine(t):
            return issubclass(t, str) or (labels == "optional" and t is type(None))

        if not all(fine(t) for t in set(map(type, labs))):
            i = next(i for i, x in enumerate(labs) if not fine(type(x)))
            vid, j = locate(i)
            raise fail(src, f"video {vid!r} proposal {j}: 'label' must be a string, got {labs[i]!r}")
    return Submission(source=describe(src), video_ids=names, counts=counts, segments=seg, scores=sc,
                      labels=labs if labels != "ignore" else None)


def read_proposal_json(path_or_dict: PathOrDict, require_label: bool = False) -> dict[str, list[dict]]:
    """Per-video view of :func:`load_submission`: ``{video_id: [{"segment": [s, e], "score":
    float(, "label": str)}]}`` (plain floats, ids as written, order kept; ``start <= end``).
    ``require_label=True`` for a detection file."""
    sub = load_submission(path_or_dict, labels="required" if require_label else "optional")
    seg, sc = sub.segments.tolist(), sub.scores.astype(np.float64).tolist()
    out, i = {}, 0
    for vid, n in zip(sub.video_ids, sub.counts.tolist()):
        rows = []
        for k in range(i, i + n):
            row = {"segment": seg[k], "score": sc[k]}
            if sub.labels[k] is not None:
                row["label"] = sub.labels[k]
            rows.append(row)
        out[vid] = rows
        i += n
    return out


def read_classification_json(path_or_dict: PathOrDict) -> dict[str, list[dict]]:
    """Read video-level class scores ``{"results": {video_id: [{"label", "score"}]}}``.

    Returns ``{video_id: [{"label": str, "score": float}, ...]}`` (order kept, ids as written).
    """
    src = path_or_dict
    out = {}
    for vid, preds in _results(load_json(src), src).items():
        where = f"video {vid!r}"
        if not isinstance(preds, list):
            raise fail(src, f"{where}: expected a list of {{label, score}}, got {type(preds).__name__}")
        rows = []
        for j, p in enumerate(preds):
            w = f"{where} entry {j}"
            if not isinstance(p, Mapping) or "label" not in p or "score" not in p:
                raise fail(src, f"{w}: expected {{'label', 'score'}}, got {p!r}")
            if not isinstance(p["label"], str):
                raise fail(src, f"{w}: 'label' must be a string, got {p['label']!r}")
            rows.append({"label": p["label"], "score": check_number(src, p["score"], f"{w} 'score'")})
        out[str(vid)] = rows
    return out


# --------------------------------------------------------------------------------------------
# writing


def _rows(vid: str, props: Any, label: str) -> list[dict]:
    """Validated plain rows of one video: an array [N, >=3] (start, end, score) or a list of
    ``{"segment", "score"(, "label")}``. label: required | optional."""
    where = f"video {vid!r}"
    if hasattr(props, "shape"):  # numpy array or torch tensor
        arr = np.asarray(props.detach().cpu().numpy() if hasattr(props, "detach") else props, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] < 3:
            raise ValueError(f"{where}: a proposal array must be [N, 3] (start, end, score), got shape {arr.shape}")
        if label == "required":
            raise ValueError(f"{where}: detections need labels: give rows {{'segment', 'score', 'label'}}")
        props = [{"segment": [a, b], "score": c} for a, b, c in arr[:, :3].tolist()]
    out = []
    for j, p in enumerate(props):
        w = f"{where} proposal {j}"
        if not isinstance(p, Mapping) or "segment" not in p or "score" not in p:
            raise ValueError(f"{w}: expected {{'segment': [s, e], 'score': x}}, got {p!r}")
        seg = [float(p["segment"][0]), float(p["segment"][1])]
        score = float(p["score"])
        if not (math.isfinite(seg[0]) and math.isfinite(seg[1]) and math.isfinite(score)):
            raise ValueError(f"{w}: non-finite segment or score {seg}, {score}")
        if seg[1] < seg[0]:
            raise ValueError(f"{w}: segment end {seg[1]} is before its start {seg[0]}")
        row = {"segment": seg, "score": score}
        if "label" in p:
            row["label"] = str(p["label"])
        elif label == "required":
            raise ValueError(f"{w}: a detection needs a 'label', got {p!r}")
        out.append(row)
    return out


def _doc(results: dict, version: str, external_data: Mapping | None) -> dict:
    return {"version": version, "results": results, "external_data": dict(external_data or {})}


def proposal_submission(results: Mapping[str, Any], version: str = VERSION,
                        external_data: Mapping | None = None) -> dict:
    """The proposal document of ``{video_id: proposals}``; proposals is an array [N, >=3]
    (start s, end s, score) or a list of ``{"segment": [s, e], "score": x}``, in seconds.
    Values are validated (finite, start <= end) and become plain floats."""
    return _doc({str(v): _rows(str(v), p, "optional") for v, p in results.items()}, version, external_data)


def detection_submission(results: Mapping[str, Any], version: str = VERSION,
                         external_data: Mapping | None = None) -> dict:
    """The detection document of ``{video_id: [{"segment": [s, e], "score": x, "label": str}]}``."""
    return _doc({str(v): _rows(str(v), p, "required") for v, p in results.items()}, version, external_data)


def classification_submission(results: Mapping[str, Any], version: str = VERSION,
                              external_data: Mapping | None = None) -> dict:
    """The classification document of ``{video_id: {label: score}}`` (or a list of
    ``{"label", "score"}``), each video's classes written best first."""
    out = {}
    for vid, preds in results.items():
        pairs = preds.items() if isinstance(preds, Mapping) else ((p["label"], p["score"]) for p in preds)
        rows = [{"label": str(lab), "score": float(sc)} for lab, sc in pairs]
        bad = [r for r in rows if not math.isfinite(r["score"])]
        if bad:
            raise ValueError(f"video {vid!r}: non-finite class score {bad[0]}")
        out[str(vid)] = sorted(rows, key=lambda r: -r["score"])
    return _doc(out, version, external_data)


def write_submission(doc: Mapping, path: PathLike) -> Path:
    """Write a submission document as JSON atomically (temporary file in the folder, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_proposal_json(results: Mapping[str, Any], path: PathLike, version: str = VERSION,
                        external_data: Mapping | None = None) -> Path:
    """:func:`proposal_submission` written to ``path`` (atomically); returns the path."""
    return write_submission(proposal_submission(results, version, external_data), path)


def write_detection_json(results: Mapping[str, Any], path: PathLike, version: str = VERSION,
                         external_data: Mapping | None = None) -> Path:
    """:func:`detection_submission` written to ``path`` (atomically); returns the path."""
    return write_submission(detection_submission(results, version, external_data), path)


def write_classification_json(results: Mapping[str, Any], path: PathLike, version: str = VERSION,
                              external_data: Mapping | None = None) -> Path:
    """:func:`classification_submission` written to ``path`` (atomically); returns the path."""
    return write_submission(classification_submission(results, version, external_data), path)
