"""ActivityNet / THUMOS14 annotation, snippet-feature and submission file formats (parsing only).

Every reader validates what it reads and raises :class:`FormatError` (a ``ValueError``) whose
message starts with the file (or ``<dict>`` for an in-memory document) and names the video and the
key at fault. Readers keep ids exactly as the file writes them; :func:`normalize_video_id` strips
the ``v_`` prefix that BSN/BMN's files (``video_info_new.csv``, ``anet_anno_action.json``,
``csv_mean_100/v_<id>.csv``) add to the YouTube id used by the ActivityNet ground truth and by
submission files.

Formats
-------
ActivityNet-1.3 ground truth (``activity_net.v1-3.min.json``; the official release)::

    {"version": "VERSION 1.3", "taxonomy": [...],
     "database": {"<youtube id>": {"duration": 82.73, "subset": "training",
                                    "resolution": "...", "url": "...",
                                    "annotations": [{"segment": [6.19, 77.73], "label": "Ballet"}]}}}

BSN/BMN preprocessed annotations (wzmsltw/BSN-boundary-sensitive-network,
``data/activitynet_annotations``; JJBOY/BMN-Boundary-Matching-Network reads the same files):

* ``video_info_new.csv``: header ``video,numFrame,seconds,fps,rfps,subset,featureFrame``, one row
  per video named ``v_<id>``; ``featureFrame`` = 16 x number of snippets (it may exceed
  ``numFrame`` by a few frames).
* ``anet_anno_action.json``: ``{"v_<id>": {"duration_second", "duration_frame",
  "feature_frame", "annotations": [{"segment", "label"}]}}`` (no subset; testing videos have
  empty annotations).

THUMOS14 annotation CSV (as written by the DAPs/BSN tooling)::

    video-name,t-init,t-end,f-init,f-end,video-duration,frame-rate,video-frames,label-idx

one row per segment; ``label-idx == -1`` marks an *Ambiguous* segment (kept, flagged). A leading
unnamed index column (``pandas.DataFrame.to_csv`` with its index) is tolerated.

Snippet features:

* one CSV per video, a header line (``f0,f1,...`` as BSN writes it, or any names; a first line
  that is entirely numeric is taken as data) and one row per snippet -> ``float32 [L, C]``
  (:func:`read_feature_csv`, :class:`CsvFeatureFolder`);
* one HDF5 file with one 2-D dataset per video, ``[L, C]`` (or ``[C, L]`` with
  ``layout="CL"``), any C (:class:`Hdf5FeatureFile`).

Submission files (the official ActivityNet evaluators' input)::

    {"version": "VERSION 1.3",
     "results": {"<youtube id>": [{"segment": [s, e], "score": 0.9, ("label": "Ballet")}]},
     "external_data": {}}

and video-level classification scores (the shape of ``cuhk_anet17_pred.json``)::

    {"results": {"<youtube id>": [{"label": "Ballet", "score": 0.8}]}}
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

PathLike = Union[str, os.PathLike]
PathOrDict = Union[str, os.PathLike, Mapping]

__all__ = [
    "FormatError",
    "MissingFeatureError",
    "normalize_video_id",
    "load_json",
    "read_ground_truth",
    "read_video_info_csv",
    "read_anno_action_json",
    "read_thumos_csv",
    "read_feature_csv",
    "FeatureStore",
    "CsvFeatureFolder",
    "Hdf5FeatureFile",
    "read_proposal_json",
    "write_proposal_json",
    "read_classification_json",
]


class FormatError(ValueError):
    """A file does not follow its format; the message names the file and the video / key."""


class MissingFeatureError(LookupError):
    """A feature store holds no features for the requested video (the message names the file)."""


# --------------------------------------------------------------------------------------------
# helpers


def normalize_video_id(video_id: str) -> str:
    """Strip one leading ``"v_"`` (BSN/BMN's file-name prefix) from a video id.

    ``"v_QOlSCBRmfWY" -> "QOlSCBRmfWY"``; ids without the prefix are returned unchanged. Apply it
    only to names known to carry the prefix (BSN's files): a raw id may itself start with "v_".
    """
    video_id = str(video_id)
    return video_id[2:] if video_id.startswith("v_") else video_id


def _describe(src: Any) -> str:
    return "<dict>" if isinstance(src, Mapping) else str(src)


def _fail(src: Any, msg: str) -> FormatError:
    return FormatError(f"{_describe(src)}: {msg}")


def _open_text(path: PathLike):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, "r", encoding="utf-8", newline="")


def load_json(src: PathOrDict) -> Mapping:
    """Parse a JSON object from a path (``.json`` or ``.json.gz``); a mapping passes through.
    Raises :class:`FormatError` naming the file when it is not valid JSON or not an object."""
    if isinstance(src, Mapping):
        return src
    with _open_text(src) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise _fail(src, f"not valid JSON ({e})") from None
    if not isinstance(data, Mapping):
        raise _fail(src, f"expected a JSON object at the top level, got {type(data).__name__}")
    return data


def _number(src: Any, value: Any, where: str, *, integer: bool = False,
            nonneg: bool = False) -> float:
    """Validate a finite number (bools refused); strings holding numbers are refused too."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _fail(src, f"{where}: expected a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise _fail(src, f"{where}: expected a finite number, got {value!r}")
    if nonneg and v < 0:
        raise _fail(src, f"{where}: expected a non-negative number, got {value!r}")
    if integer:
        if v != int(v):
            raise _fail(src, f"{where}: expected an integer, got {value!r}")
        return int(v)
    return v


def _csv_number(path: Any, text: str, where: str, *, integer: bool = False) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise _fail(path, f"{where}: expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise _fail(path, f"{where}: expected a finite number, got {text!r}")
    if integer:
        if v != int(v):
            raise _fail(path, f"{where}: expected an integer, got {text!r}")
        return int(v)
    return v


def _segment(src: Any, seg: Any, where: str) -> Tuple[float, float]:
    if isinstance(seg, (str, bytes)) or not isinstance(seg, Sequence) or len(seg) != 2:
        raise _fail(src, f"{where}: 'segment' must be a list [start, end], got {seg!r}")
    s = _number(src, seg[0], f"{where} segment start")
    e = _number(src, seg[1], f"{where} segment end")
    if e < s:
        raise _fail(src, f"{where}: segment end {e} is before its start {s}")
    return s, e


def _annotations(src: Any, annos: Any, where: str) -> List[Tuple[float, float, str]]:
    if annos is None:
        return []
    if not isinstance(annos, list):
        raise _fail(src, f"{where}: 'annotations' must be a list, got {type(annos).__name__}")
    out = []
    for j, a in enumerate(annos):
        w = f"{where} annotation {j}"
        if not isinstance(a, Mapping):
            raise _fail(src, f"{w}: expected an object, got {a!r}")
        if "segment" not in a:
            raise _fail(src, f"{w}: missing key 'segment'")
        if "label" not in a:
            raise _fail(src, f"{w}: missing key 'label'")
        if not isinstance(a["label"], str):
            raise _fail(src, f"{w}: 'label' must be a string, got {a['label']!r}")
        s, e = _segment(src, a["segment"], w)
        out.append((s, e, a["label"]))
    return out


# --------------------------------------------------------------------------------------------
# annotations


def read_ground_truth(path_or_dict: PathOrDict) -> Tuple[Dict[str, dict], List[str]]:
    """Read and validate an ActivityNet-1.3 style ground-truth JSON (``.json`` or ``.json.gz``).

    Returns ``(videos, classes)``: ``videos = {video_id: {"duration": float, "subset": str,
    "annotations": [(start, end, label), ...]}}`` in file order with ids exactly as written (no
    prefix stripping), and ``classes`` = the sorted unique labels of all annotations. A video
    without an ``annotations`` key gets ``[]`` (testing videos). Raises :class:`FormatError`
    naming the file, the video and the key on malformed input (missing ``database``, a duration
    that is not a non-negative number, a segment that is not ``[start <= end]``, a label that is
    not a string, ...).
    """
    data = load_json(path_or_dict)
    src = path_or_dict
    db = data.get("database")
    if db is None:
        raise _fail(src, "missing top-level key 'database' (not an ActivityNet ground-truth file)")
    if not isinstance(db, Mapping):
        raise _fail(src, f"'database' must be an object, got {type(db).__name__}")
    videos: Dict[str, dict] = {}
    labels = set()
    for vid, info in db.items():
        where = f"video {vid!r}"
        if not isinstance(info, Mapping):
            raise _fail(src, f"{where}: expected an object, got {type(info).__name__}")
        for key in ("duration", "subset"):
            if key not in info:
                raise _fail(src, f"{where}: missing key {key!r}")
        duration = _number(src, info["duration"], f"{where} 'duration'", nonneg=True)
        if not isinstance(info["subset"], str):
            raise _fail(src, f"{where}: 'subset' must be a string, got {info['subset']!r}")
        annos = _annotations(src, info.get("annotations", []), where)
        labels.update(a[2] for a in annos)
        videos[str(vid)] = {"duration": duration, "subset": info["subset"], "annotations": annos}
    return videos, sorted(labels)


_VIDEO_INFO_COLUMNS = ("video", "numFrame", "seconds", "fps", "rfps", "subset", "featureFrame")


def _read_csv_rows(path: PathLike) -> Tuple[List[str], List[List[str]]]:
    with _open_text(path) as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if not rows:
        raise _fail(path, "empty file (expected a header line)")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise _fail(path, f"line {i + 2}: {len(r)} fields, the header has {len(header)}")
    return header, body


def read_video_info_csv(path: PathLike) -> Dict[str, dict]:
    """Read BSN's ``video_info_new.csv`` (``video,numFrame,seconds,fps,rfps,subset,featureFrame``).

    Returns ``{video: {"num_frames": int, "seconds": float, "fps": float, "rfps": float,
    "subset": str, "feature_frame": int}}`` in file order; ``video`` keeps its ``v_`` prefix.
    Extra columns are ignored; a missing column, a non-numeric or non-positive count / duration
    or a duplicated video raises :class:`FormatError` naming the file, line and video.
    """
    header, body = _read_csv_rows(path)
    missing = [c for c in _VIDEO_INFO_COLUMNS if c not in header]
    if missing:
        raise _fail(path, f"missing column(s) {missing} (expected header "
                          f"{','.join(_VIDEO_INFO_COLUMNS)}; got {','.join(header)})")
    col = {c: header.index(c) for c in _VIDEO_INFO_COLUMNS}
    out: Dict[str, dict] = {}
    for i, r in enumerate(body):
        video = r[col["video"]].strip()
        where = f"line {i + 2} (video {video!r})"
        if not video:
            raise _fail(path, f"line {i + 2}: empty 'video'")
        if video in out:
            raise _fail(path, f"{where}: duplicated video")
        rec = {
            "num_frames": _csv_number(path, r[col["numFrame"]], f"{where} numFrame", integer=True),
            "seconds": _csv_number(path, r[col["seconds"]], f"{where} seconds"),
            "fps": _csv_number(path, r[col["fps"]], f"{where} fps"),
            "rfps": _csv_number(path, r[col["rfps"]], f"{where} rfps"),
            "subset": r[col["subset"]].strip(),
            "feature_frame": _csv_number(path, r[col["featureFrame"]], f"{where} featureFrame",
                                         integer=True),
        }
        for key in ("num_frames", "seconds", "feature_frame"):
            if rec[key] <= 0:
                raise _fail(path, f"{where}: {key} must be positive, got {rec[key]}")
        out[video] = rec
    return out


def read_anno_action_json(path_or_dict: PathOrDict) -> Dict[str, dict]:
    """Read BSN's ``anet_anno_action.json``.

    Returns ``{video: {"duration_second": float, "duration_frame": int, "feature_frame": int,
    "annotations": [(start, end, label), ...]}}`` with ids as written (``v_<id>``). Durations and
    frame counts must be positive numbers; see :func:`read_ground_truth` for the annotations.
    """
    data = load_json(path_or_dict)
    src = path_or_dict
    if "database" in data:
        raise _fail(src, "this is an ActivityNet ground-truth file (top-level 'database'); "
                         "read it with read_ground_truth")
    out: Dict[str, dict] = {}
    for vid, info in data.items():
        where = f"video {vid!r}"
        if not isinstance(info, Mapping):
            raise _fail(src, f"{where}: expected an object, got {type(info).__name__}")
        for key in ("duration_second", "duration_frame", "feature_frame"):
            if key not in info:
                raise _fail(src, f"{where}: missing key {key!r}")
        rec = {
            "duration_second": _number(src, info["duration_second"], f"{where} 'duration_second'"),
            "duration_frame": _number(src, info["duration_frame"], f"{where} 'duration_frame'",
                                      integer=True),
            "feature_frame": _number(src, info["feature_frame"], f"{where} 'feature_frame'",
                                     integer=True),
        }
        for key, v in rec.items():
            if v <= 0:
                raise _fail(src, f"{where}: {key!r} must be positive, got {v}")
        rec["annotations"] = _annotations(src, info.get("annotations", []), where)
        out[str(vid)] = rec
    return out


_THUMOS_REQUIRED = ("video-name", "t-init", "t-end", "video-duration", "frame-rate", "label-idx")


def read_thumos_csv(path: PathLike) -> Dict[str, dict]:
    """Read a THUMOS14 annotation CSV (``video-name,t-init,t-end,f-init,f-end,video-duration,
    frame-rate,video-frames,label-idx``; one row per segment).

    Returns ``{video: {"duration": float, "fps": float, "num_frames": int or None,
    "annotations": [(t_init, t_end, label_idx, ambiguous), ...]}}`` in order of first appearance.
    ``label_idx`` is an int; ``ambiguous`` is True for ``label-idx == -1`` (THUMOS's *Ambiguous*
    segments are kept and flagged; dropping them is the caller's choice). ``f-init``, ``f-end`` and
    ``video-frames`` are optional. Rows of one video must agree on duration and frame rate.
    """
    header, body = _read_csv_rows(path)
    if header and header[0] == "" and "video-name" in header:  # pandas index column
        header = header[1:]
        body = [r[1:] for r in body]
    missing = [c for c in _THUMOS_REQUIRED if c not in header]
    if missing:
        raise _fail(path, f"missing column(s) {missing} (got {','.join(header)})")
    col = {c: header.index(c) for c in header}
    out: Dict[str, dict] = {}
    for i, r in enumerate(body):
        video = r[col["video-name"]].strip()
        where = f"line {i + 2} (video {video!r})"
        if not video:
            raise _fail(path, f"line {i + 2}: empty 'video-name'")
        t0 = _csv_number(path, r[col["t-init"]], f"{where} t-init")
        t1 = _csv_number(path, r[col["t-end"]], f"{where} t-end")
        if t1 < t0:
            raise _fail(path, f"{where}: t-end {t1} is before t-init {t0}")
        duration = _csv_number(path, r[col["video-duration"]], f"{where} video-duration")
        fps = _csv_number(path, r[col["frame-rate"]], f"{where} frame-rate")
        if duration <= 0 or fps <= 0:
            raise _fail(path, f"{where}: video-duration and frame-rate must be positive")
        label = _csv_number(path, r[col["label-idx"]], f"{where} label-idx", integer=True)
        nframes = None
        if "video-frames" in col and r[col["video-frames"]].strip():
            nframes = _csv_number(path, r[col["video-frames"]], f"{where} video-frames",
                                  integer=True)
        rec = out.get(video)
        if rec is None:
            rec = out[video] = {"duration": duration, "fps": fps, "num_frames": nframes,
                                "annotations": []}
        elif abs(rec["duration"] - duration) > 1e-3 or abs(rec["fps"] - fps) > 1e-3:
            raise _fail(path, f"{where}: video-duration / frame-rate ({duration}, {fps}) disagree "
                              f"with an earlier row ({rec['duration']}, {rec['fps']})")
        rec["annotations"].append((t0, t1, int(label), int(label) == -1))
    return out


# --------------------------------------------------------------------------------------------
# snippet features


def _is_numeric_row(fields: Sequence[str]) -> bool:
    try:
        for x in fields:
            float(x)
    except ValueError:
        return False
    return True


def read_feature_csv(path: PathLike) -> np.ndarray:
    """Read one video's snippet features from a CSV -> ``float32 [L, C]`` (one row per snippet).

    The first line is a header (BSN writes ``f0..f{C-1}``; any names are accepted) unless it is
    entirely numeric, in which case it is data. Raises :class:`FormatError` naming the file for
    an empty file, no data rows, a header / row with a different number of columns than the
    others, or a non-numeric value (with its row and column). Non-finite values (``nan``,
    ``inf``) parse; checking them is the caller's job.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "r", encoding="utf-8") as f:
        first = f.readline()
        if not first.strip():
            raise _fail(path, "empty file")
        fields = next(csv.reader([first]))
        has_header = not _is_numeric_row(fields)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
                arr = np.loadtxt(f if has_header else _chain_first(first, f), delimiter=",",
                                 dtype=np.float32, ndmin=2)
        except ValueError as e:
            msg = str(e).split("; use `usecols`")[0].rstrip(".")
            raise _fail(path, f"malformed feature CSV: {msg} (numpy's row numbering, "
                              f"{'after the header line' if has_header else 'no header line'})"
                        ) from None
    if arr.size == 0 or arr.shape[0] == 0:
        raise _fail(path, "no data rows")
    if has_header and len(fields) != arr.shape[1]:
        raise _fail(path, f"the header has {len(fields)} columns but the rows have {arr.shape[1]}")
    return arr


def _chain_first(first: str, f):
    yield first
    yield from f


class FeatureStore:
    """Where per-video snippet features live: ``keys()``, ``has(id)``, ``load(id) -> [L, C]``.

    ``load_range(id, start, stop)`` returns rows ``start:stop`` (a store that can read a slice
    without loading everything overrides it) and ``shape(id)`` the ``(L, C)`` shape.
    ``describe(id)`` names the file for messages. Ids may be given with or without BSN's ``v_``
    prefix; the store resolves both.
    """

    def keys(self) -> List[str]:
        raise NotImplementedError

    def has(self, video_id: str) -> bool:
        raise NotImplementedError

    def load(self, video_id: str) -> np.ndarray:
        raise NotImplementedError

    def describe(self, video_id: str) -> str:
        raise NotImplementedError

    def load_range(self, video_id: str, start: int, stop: int) -> np.ndarray:
        return self.load(video_id)[start:stop]

    def shape(self, video_id: str) -> Tuple[int, int]:
        return tuple(self.load(video_id).shape)

    def __contains__(self, video_id: str) -> bool:
        return self.has(video_id)


def _candidates(video_id: str, prefix: str = "v_") -> List[str]:
    video_id = str(video_id)
    out = [video_id]
    if prefix and video_id.startswith(prefix):
        out.append(video_id[len(prefix):])
    elif prefix:
        out.append(prefix + video_id)
    return out


class CsvFeatureFolder(FeatureStore):
    """A folder of per-video CSVs named ``<prefix><video_id>.csv`` (BSN: ``csv_mean_100/v_<id>.csv``).

    ``keys()`` lists the ids (file stems without the prefix). ``load`` reads with
    :func:`read_feature_csv`; a missing file raises :class:`MissingFeatureError`.
    """

    def __init__(self, folder: PathLike, prefix: str = "v_", suffix: str = ".csv"):
        self.folder = Path(folder)
        self.prefix = prefix
        self.suffix = suffix
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{self.folder}: feature folder does not exist")

    def _path(self, video_id: str) -> Optional[Path]:
        video_id = str(video_id)
        names = [self.prefix + video_id]
        if self.prefix and video_id.startswith(self.prefix):
            names.append(video_id)
        for n in names:
            p = self.folder / (n + self.suffix)
            if p.is_file():
                return p
        return None

    def keys(self) -> List[str]:
        out = []
        for p in sorted(self.folder.iterdir()):
            if p.name.endswith(self.suffix) and p.name.startswith(self.prefix):
                out.append(p.name[len(self.prefix):len(p.name) - len(self.suffix)])
        return out

    def has(self, video_id: str) -> bool:
        return self._path(video_id) is not None

    def describe(self, video_id: str) -> str:
        p = self._path(video_id)
        return str(p if p is not None else self.folder / (self.prefix + str(video_id) + self.suffix))

    def load(self, video_id: str) -> np.ndarray:
        p = self._path(video_id)
        if p is None:
            raise MissingFeatureError(f"{self.describe(video_id)}: no such feature file "
                                      f"(video {video_id!r})")
        return read_feature_csv(p)

    def __repr__(self) -> str:
        return f"CsvFeatureFolder({str(self.folder)!r}, prefix={self.prefix!r})"


class Hdf5FeatureFile(FeatureStore):
    """One HDF5 file, one 2-D dataset per video at the top level (named ``<id>`` or ``v_<id>``).

    ``layout="LC"`` (default) stores ``[L, C]``; ``layout="CL"`` stores ``[C, L]`` and is
    transposed on load. Any channel count. The file is opened lazily and reopened in a new process
    (DataLoader workers), so a store can be handed to workers. ``load_range`` reads only the slice.
    """

    def __init__(self, path: PathLike, layout: str = "LC"):
        import h5py  # noqa: F401  (fail early when h5py is missing)

        self.path = Path(path)
        if layout not in ("LC", "CL"):
            raise ValueError(f"layout must be 'LC' or 'CL', got {layout!r}")
        self.layout = layout
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such HDF5 file")
        self._file = None
        self._pid = None
        try:
            self._h5()
        except OSError as e:
            raise FormatError(f"{self.path}: not a readable HDF5 file ({e})") from None

    def _h5(self):
        import h5py

        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"] = None
        state["_pid"] = None
        return state

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def _name(self, video_id: str) -> Optional[str]:
        f = self._h5()
        for n in _candidates(video_id):
            if n in f:
                return n
        return None

    def keys(self) -> List[str]:
        import h5py

        f = self._h5()
        return [k for k in f.keys() if isinstance(f[k], h5py.Dataset)]

    def has(self, video_id: str) -> bool:
        return self._name(video_id) is not None

    def describe(self, video_id: str) -> str:
        n = self._name(video_id)
        return f"{self.path}[{n if n is not None else video_id}]"

    def _dataset(self, video_id: str):
        import h5py

        n = self._name(video_id)
        if n is None:
            raise MissingFeatureError(f"{self.path}: no dataset for video {video_id!r}")
        ds = self._h5()[n]
        if not isinstance(ds, h5py.Dataset):
            raise FormatError(f"{self.path}[{n}]: expected a dataset, found a group")
        if ds.ndim != 2 or min(ds.shape) == 0:
            raise FormatError(f"{self.path}[{n}]: expected a non-empty 2-D "
                              f"{'[L, C]' if self.layout == 'LC' else '[C, L]'} dataset, "
                              f"got shape {ds.shape}")
        if not np.issubdtype(ds.dtype, np.number):
            raise FormatError(f"{self.path}[{n}]: expected a numeric dataset, got {ds.dtype}")
        return ds

    def shape(self, video_id: str) -> Tuple[int, int]:
        s = self._dataset(video_id).shape
        return (int(s[0]), int(s[1])) if self.layout == "LC" else (int(s[1]), int(s[0]))

    def load(self, video_id: str) -> np.ndarray:
        a = np.asarray(self._dataset(video_id)[()], dtype=np.float32)
        return np.ascontiguousarray(a if self.layout == "LC" else a.T)

    def load_range(self, video_id: str, start: int, stop: int) -> np.ndarray:
        ds = self._dataset(video_id)
        if self.layout == "LC":
            a = ds[start:stop]
        else:
            a = ds[:, start:stop].T
        return np.ascontiguousarray(np.asarray(a, dtype=np.float32))

    def __repr__(self) -> str:
        return f"Hdf5FeatureFile({str(self.path)!r}, layout={self.layout!r})"


# --------------------------------------------------------------------------------------------
# submissions


def _results(data: Mapping, src: Any) -> Mapping:
    res = data.get("results")
    if res is None:
        raise _fail(src, "missing top-level key 'results'")
    if not isinstance(res, Mapping):
        raise _fail(src, f"'results' must be an object, got {type(res).__name__}")
    return res


def read_proposal_json(path_or_dict: PathOrDict, require_label: bool = False
                       ) -> Dict[str, List[dict]]:
    """Read an ActivityNet submission (proposals, or detections with ``require_label=True``).

    Returns ``{video_id: [{"segment": [start, end], "score": float(, "label": str)}, ...]}`` (the
    ``results`` object, validated and converted to plain floats; ids as written, order kept).
    A segment must be two finite numbers with start <= end and a score one finite number.
    """
    data = load_json(path_or_dict)
    src = path_or_dict
    out: Dict[str, List[dict]] = {}
    for vid, props in _results(data, src).items():
        where = f"video {vid!r}"
        if not isinstance(props, list):
            raise _fail(src, f"{where}: expected a list of proposals, got {type(props).__name__}")
        rows = []
        for j, p in enumerate(props):
            w = f"{where} proposal {j}"
            if not isinstance(p, Mapping):
                raise _fail(src, f"{w}: expected an object, got {p!r}")
            if "segment" not in p or "score" not in p:
                raise _fail(src, f"{w}: needs keys 'segment' and 'score', got {sorted(p)}")
            s, e = _segment(src, p["segment"], w)
            row = {"segment": [s, e], "score": _number(src, p["score"], f"{w} 'score'")}
            if "label" in p:
                if not isinstance(p["label"], str):
                    raise _fail(src, f"{w}: 'label' must be a string, got {p['label']!r}")
                row["label"] = p["label"]
            elif require_label:
                raise _fail(src, f"{w}: missing key 'label' (a detection file needs labels)")
            rows.append(row)
        out[str(vid)] = rows
    return out


def _rows_for_write(vid: str, props: Any, path: Any) -> List[dict]:
    where = f"video {vid!r}"
    if isinstance(props, np.ndarray) or (hasattr(props, "numpy") and hasattr(props, "shape")):
        arr = np.asarray(props.numpy() if hasattr(props, "numpy") else props, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] < 3:
            raise ValueError(f"{path}: {where}: a proposal array must be [N, 3] "
                             f"(start, end, score), got shape {arr.shape}")
        props = [{"segment": [r[0], r[1]], "score": r[2]} for r in arr]
    out = []
    for j, p in enumerate(props):
        w = f"{where} proposal {j}"
        if not isinstance(p, Mapping) or "segment" not in p or "score" not in p:
            raise ValueError(f"{path}: {w}: expected {{'segment': [s, e], 'score': x}}, got {p!r}")
        seg = [float(p["segment"][0]), float(p["segment"][1])]
        score = float(p["score"])
        if not (math.isfinite(seg[0]) and math.isfinite(seg[1]) and math.isfinite(score)):
            raise ValueError(f"{path}: {w}: non-finite segment or score {seg}, {score}")
        if seg[1] < seg[0]:
            raise ValueError(f"{path}: {w}: segment end {seg[1]} is before its start {seg[0]}")
        row = {"segment": seg, "score": score}
        if "label" in p:
            row["label"] = str(p["label"])
        out.append(row)
    return out


def write_proposal_json(results: Mapping[str, Any], path: PathLike, version: str = "VERSION 1.3",
                        external_data: Optional[Mapping] = None) -> Path:
    """Write an ActivityNet submission JSON atomically (temporary file, then rename).

    ``results = {video_id: proposals}`` where proposals is a list of ``{"segment": [s, e],
    "score": x(, "label": str)}`` or an array ``[N, >=3]`` of (start, end, score). Values are
    validated (finite, start <= end) and written as plain floats; ids as given (the ActivityNet
    evaluators expect the YouTube id without ``v_``). Returns the path.
    """
    path = Path(path)
    doc = {
        "version": version,
        "results": {str(vid): _rows_for_write(str(vid), props, path)
                    for vid, props in results.items()},
        "external_data": dict(external_data or {}),
    }
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


def read_classification_json(path_or_dict: PathOrDict) -> Dict[str, List[dict]]:
    """Read video-level class scores ``{"results": {video_id: [{"label", "score"}]}}``.

    Returns ``{video_id: [{"label": str, "score": float}, ...]}`` (order kept, ids as written).
    """
    data = load_json(path_or_dict)
    src = path_or_dict
    out: Dict[str, List[dict]] = {}
    for vid, preds in _results(data, src).items():
        where = f"video {vid!r}"
        if not isinstance(preds, list):
            raise _fail(src, f"{where}: expected a list of {{label, score}}, "
                             f"got {type(preds).__name__}")
        rows = []
        for j, p in enumerate(preds):
            w = f"{where} entry {j}"
            if not isinstance(p, Mapping) or "label" not in p or "score" not in p:
                raise _fail(src, f"{w}: expected {{'label', 'score'}}, got {p!r}")
            if not isinstance(p["label"], str):
                raise _fail(src, f"{w}: 'label' must be a string, got {p['label']!r}")
            rows.append({"label": p["label"], "score": _number(src, p["score"], f"{w} 'score'")})
        out[str(vid)] = rows
    return out
