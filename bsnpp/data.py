"""BSN++ data pipeline: annotation records, snippet rescaling, BMN labels, datasets.

Sources (read, then re-written; no code copied)
------------------------------------------------
* BMN (JJBOY/BMN-Boundary-Matching-Network ``dataset.py`` + ``utils.py``, and mmaction2's port
  ``mmaction/models/localizers/bmn.py``): ground truth normalised by
  ``corrected_second = feature_frame / duration_frame * duration_second`` and clipped to
  [0, 1]; boundary regions of width ``3 / T`` centred on every GT start / end; start / end
  targets = max IoA (``ioa_with_anchors``) of each temporal anchor with those regions; IoU-map
  target = max IoU (``iou_with_anchors``) of each map proposal with the GT segments.
* BSN (wzmsltw/BSN-boundary-sensitive-network, ``data/activitynet_feature_cuhk/data_process.py``
  ``poolData``; ``TEM_load_data.py``): the rescaling of variable-length snippet features to T
  bins (:func:`rescale_snippets`) and the alternative boundary-region width
  ``max(1 / T, 0.1 * gt_len)``.

Conventions (fixed for this repository; ``bsnpp/postprocess.py`` and ``bsnpp/loss.py`` use them)
--------------------------------------------------------------------------------------------------
Normalised time: a video's features cover ``feature_seconds`` (BMN's ``corrected_second`` when
the frame counts are known, else the duration); a time ``t`` seconds is ``t / feature_seconds``
clipped to [0, 1]. T = ``temporal_scale`` bins; bin k covers ``[k / T, (k + 1) / T]``.

* ``features``: float32 ``[C, T]``.
* ``start`` / ``end``: float32 ``[T]``; entry k = max over GT segments of
  IoA(anchor_k, region) = |anchor_k ∩ region| / |anchor_k|, region = ``[b - w/2, b + w/2]``
  around the GT start (resp. end) ``b`` with ``w = 3 / T`` (BMN; ``boundary_width`` in units of
  1/T, or ``"bsn"``: ``max(1/T, 0.1 * (end - start))``). ``anchors="bmn"`` (default; JJBOY's
  ``anchor_xmin = (k - 0.5) / T``, ``anchor_xmax`` from ``range(1, T + 1)`` = ``(k + 1.5) / T``,
  identical to mmaction2's ``_temporal_anchors(-0.5, 1.5)``): anchor k is
  ``[(k - 0.5) / T, (k + 1.5) / T]``, width 2/T, centred on bin k's centre -- so
  ``start[k] == 1`` exactly when the GT start lies in ``[k / T, (k + 1) / T]`` (same for end),
  and the targets are mirror-symmetric: reversing time maps ``start`` to ``flip(end)`` exactly
  (what BSN++'s bi-directional training needs). ``"aligned"``: start anchor ``[(k-0.5)/T,
  (k+0.5)/T]`` (centred on k/T) and end anchor ``[(k+0.5)/T, (k+1.5)/T]`` (centred on
  (k+1)/T); ``"bsn"``: bin k itself, ``[k/T, (k+1)/T]`` (BSN's TEM).
* ``iou_map``: float32 ``[D, T]`` (D = ``max_duration``, default T): cell ``[d, s]`` is the
  proposal ``[s / T, (s + d + 1) / T]``; target = max IoU with the GT segments. Cells with
  ``s + d + 1 > T`` run past the video end: invalid, target 0, ``valid_map_mask(D, T)`` is
  False there. Unlike BMN's inference (which drops ``s + d + 1 == T``), proposals ending exactly
  at the video end are valid. Post-processing reads ``start[s]`` for the proposal start
  ``s / T`` and ``end[min(s + d + 1, T - 1)]`` for its end.
* ``segments``: float32 ``[G, 2]`` normalised GT (start, end), padded with -1 to the dataset's
  ``max_segments``; ``num_segments`` the count. For the scale-balanced sampler.

Sliding windows (THUMOS14; ``window=W``): the raw snippet sequence is cut into windows of W
snippets with ``stride`` (default W / 2, plus a last window flush with the video end; a video
shorter than W gives one window zero-padded at the end). In a window, T = W and normalised time
is relative to the window: ``(t - offset_seconds) / window_seconds``, where a snippet lasts
``feature_seconds / L`` seconds. GT segments that intersect the window are clipped to it and
used as targets; training keeps only windows that contain at least one GT segment *entirely*
(a segment longer than the window never trains; counted in ``dataset.stats``). Every item
reports ``offset_seconds`` and ``window_seconds`` so that a proposal ``[a, b]`` (normalised) maps
back to video time ``offset_seconds + [a, b] * window_seconds`` (:meth:`ProposalDataset.to_video_time`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from shared.formats.activitynet import (
    CsvFeatureFolder,
    FeatureStore,
    FormatError,
    Hdf5FeatureFile,
    MissingFeatureError,
    load_json,
    normalize_video_id,
    read_anno_action_json,
    read_ground_truth,
    read_thumos_csv,
    read_video_info_csv,
)

log = logging.getLogger(__name__)

__all__ = [
    "VideoRecord",
    "load_records",
    "open_feature_store",
    "rescale_snippets",
    "boundary_anchors",
    "boundary_targets",
    "iou_map_targets",
    "valid_map_mask",
    "proposal_map_bounds",
    "make_targets",
    "normalized_segments",
    "ScanReport",
    "scan_features",
    "ProposalDataset",
]

PathLike = Union[str, os.PathLike]

_SUBSET_ALIASES = {
    "train": "training", "training": "training",
    "val": "validation", "valid": "validation", "validation": "validation",
    "test": "testing", "testing": "testing",
}


def _canon_subset(name: str) -> str:
    return _SUBSET_ALIASES.get(str(name).strip().lower(), str(name).strip().lower())


# --------------------------------------------------------------------------------------------
# records


@dataclass(frozen=True)
class VideoRecord:
    """One annotated video.

    Attributes:
        video_id: the id in the evaluation ground truth's convention (ActivityNet: the YouTube id
            without BSN's ``v_``; THUMOS: ``video_validation_0000051``); submission files use it.
        subset: ``training`` / ``validation`` / ``testing`` (THUMOS: from the video name).
        duration: video duration in seconds.
        segments: ``((start, end, label), ...)`` in seconds, as annotated (not clipped).
        feature_key: the id handed to the :class:`FeatureStore` (which adds its own prefix).
        feature_seconds: the duration the snippet features cover: BMN's ``corrected_second =
            feature_frame / duration_frame * duration_second`` when the BSN files give frame
            counts, else ``duration``. Normalised time is ``t / feature_seconds``.
        num_snippets, num_channels: the feature shape ``[L, C]``, filled by :func:`scan_features`.
        fps: frame rate when known (THUMOS CSV, BSN's video_info).
    """

    video_id: str
    subset: str
    duration: float
    segments: Tuple[Tuple[float, float, Any], ...]
    feature_key: str
    feature_seconds: float
    num_snippets: Optional[int] = None
    num_channels: Optional[int] = None
    fps: Optional[float] = None


def _sniff(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".csv"):
        with open(path, "r", encoding="utf-8") as f:
            header = f.readline()
        cols = [c.strip() for c in header.split(",")]
        if "video-name" in cols:
            return "thumos"
        if "numFrame" in cols and "featureFrame" in cols:
            return "video_info"
        raise FormatError(f"{path}: unknown annotation CSV (header {header.strip()!r}); expected "
                          "BSN's video_info_new.csv or a THUMOS14 annotation CSV")
    if name.endswith(".json") or name.endswith(".json.gz"):
        data = load_json(path)  # parsed again by its reader below (error messages name the file)
        return "activitynet" if "database" in data else "anno_action"
    raise FormatError(f"{path}: unknown annotation file type (expected .json, .json.gz or .csv)")


def _thumos_subset(video: str) -> str:
    v = video.lower()
    if "validation" in v:
        return "validation"
    if "test" in v:
        return "testing"
    if "train" in v:
        return "training"
    return ""


def load_records(*sources: Union[PathLike, Mapping], subset: Union[None, str, Iterable[str]] = None,
                 keep_ambiguous: bool = False) -> List[VideoRecord]:
    """Video records from annotation files, auto-detected by content:

    * ActivityNet-1.3 ground-truth JSON (``database``; also ActivityNet-style THUMOS JSONs);
    * BSN's ``video_info_new.csv`` + ``anet_anno_action.json`` (BMN's inputs; give both: the CSV
      holds the subsets, the JSON the annotations; both give the frame counts);
    * a THUMOS14 annotation CSV (``video-name,t-init,...``; subset from the video name:
      ``video_validation_*`` -> ``validation`` (THUMOS trains on it), ``video_test_*`` ->
      ``testing``). Ambiguous segments (label -1) are dropped unless ``keep_ambiguous``.

    Several sources merge by video id (``v_`` stripped from BSN's names): the order, duration and
    segments come from the first annotation source listing the video, the subset from the first
    source having one, ``feature_seconds`` from a source with frame counts (BMN's
    ``corrected_second``), else the duration. Videos only in ``video_info_new.csv`` are ignored;
    videos with a non-positive duration are skipped with a warning.

    ``subset``: keep only these subsets (``train``/``val``/``test`` accepted as aliases of
    ``training``/``validation``/``testing``); None keeps all.
    """
    if not sources:
        raise ValueError("load_records: give at least one annotation file")
    parsed: List[Tuple[str, str, Dict[str, dict]]] = []  # (kind, name, {norm_id: fields})
    for src in sources:
        name = "<dict>" if isinstance(src, Mapping) else str(src)
        if isinstance(src, Mapping):
            kind = "activitynet" if "database" in src else "anno_action"
        else:
            src = Path(src)
            if not src.is_file():
                raise FileNotFoundError(f"{src}: no such annotation file")
            kind = _sniff(src)
        entries: Dict[str, dict] = {}
        if kind == "activitynet":
            videos, _ = read_ground_truth(src)
            for vid, v in videos.items():
                entries[vid] = {"duration": v["duration"], "subset": v["subset"],
                                "segments": tuple(v["annotations"]), "key": vid}
        elif kind == "anno_action":
            for vid, v in read_anno_action_json(src).items():
                entries[normalize_video_id(vid)] = {
                    "duration": v["duration_second"], "segments": tuple(v["annotations"]),
                    "feature_seconds": v["feature_frame"] / v["duration_frame"]
                    * v["duration_second"],
                    "key": normalize_video_id(vid)}
        elif kind == "video_info":
            for vid, v in read_video_info_csv(src).items():
                entries[normalize_video_id(vid)] = {
                    "subset": v["subset"], "fps": v["fps"],
                    "feature_seconds": v["feature_frame"] / v["num_frames"] * v["seconds"]}
        elif kind == "thumos":
            for vid, v in read_thumos_csv(src).items():
                segs = tuple((s, e, lab) for (s, e, lab, amb) in v["annotations"]
                             if keep_ambiguous or not amb)
                entries[vid] = {"duration": v["duration"], "subset": _thumos_subset(vid),
                                "segments": segs, "fps": v["fps"], "key": vid}
        parsed.append((kind, name, entries))

    annotation_sources = [p for p in parsed if p[0] != "video_info"]
    if not annotation_sources:
        raise ValueError("load_records: video_info_new.csv holds no annotations; also give "
                         "anet_anno_action.json or the ActivityNet ground-truth JSON")
    order: List[str] = []
    seen = set()
    for _, _, entries in annotation_sources:
        for vid in entries:
            if vid not in seen:
                seen.add(vid)
                order.append(vid)

    wanted = None
    if subset is not None:
        wanted = {_canon_subset(s) for s in ([subset] if isinstance(subset, str) else subset)}

    def first(vid: str, key: str, pool=parsed):
        for _, _, entries in pool:
            e = entries.get(vid)
            if e is not None and key in e:
                return e[key]
        return None

    records: List[VideoRecord] = []
    bad_duration: List[str] = []
    no_subset = 0
    for vid in order:
        duration = first(vid, "duration", annotation_sources)
        segments = first(vid, "segments", annotation_sources)
        key = first(vid, "key", annotation_sources)
        sub = first(vid, "subset")
        fsec = first(vid, "feature_seconds")
        if sub is None:
            no_subset += 1
            sub = ""
        if duration is None or duration <= 0:
            bad_duration.append(vid)
            continue
        if wanted is not None and _canon_subset(sub) not in wanted:
            continue
        records.append(VideoRecord(
            video_id=vid, subset=sub, duration=float(duration), segments=tuple(segments),
            feature_key=key, feature_seconds=float(fsec if fsec and fsec > 0 else duration),
            fps=first(vid, "fps")))
    if wanted is not None and no_subset == len(order):
        raise ValueError(f"load_records: subset={subset!r} requested but none of "
                         f"{[p[1] for p in parsed]} gives subsets (anet_anno_action.json has none: "
                         "also give video_info_new.csv or the ground-truth JSON)")
    if bad_duration:
        log.warning("load_records: skipped %d video(s) with a non-positive duration (first: %s)",
                    len(bad_duration), ", ".join(bad_duration[:5]))
    return records


def open_feature_store(path: PathLike, prefix: str = "v_", layout: str = "LC") -> FeatureStore:
    """A folder -> :class:`CsvFeatureFolder` (``<prefix><id>.csv``); an ``.h5``/``.hdf5`` file ->
    :class:`Hdf5FeatureFile` (``layout`` "LC" or "CL")."""
    path = Path(path)
    if path.is_dir():
        return CsvFeatureFolder(path, prefix=prefix)
    if path.suffix.lower() in (".h5", ".hdf5", ".hdf"):
        return Hdf5FeatureFile(path, layout=layout)
    raise FileNotFoundError(f"{path}: not a feature folder nor an HDF5 file (.h5/.hdf5)")


# --------------------------------------------------------------------------------------------
# rescaling (BSN's poolData)


def rescale_snippets(feats: np.ndarray, T: int, num_sample_perbin: int = 3,
                     edge: str = "bsn", eps: float = 1e-4) -> np.ndarray:
    """Rescale ``[L, C]`` snippet features to ``[T, C]`` bins, BSN's ``poolData`` (mean pooling).

    In snippet units the features span ``[0, L]`` and snippet i sits at its centre ``i + 0.5``
    (BSN: ``x_i = st/2 + i*st`` seconds, ``corrected_second = L * st``); features between centres
    are linearly interpolated (``scipy.interpolate.interp1d``). Bin k covers
    ``[k L / T, (k+1) L / T]``; BSN clips it to the centre range,
    ``xmin = max(0.5 + eps, k L / T)``, ``xmax = min(L - 0.5 - eps, (k+1) L / T)``, takes
    ``num_sample_perbin`` equally spaced points from xmin to xmax and averages them. A bin
    entirely outside the centre range (``xmax < 0.5`` or ``xmin > L - 0.5``: the first / last bin
    when L < T) is all zeros in BSN; ``edge="clamp"`` instead samples the unclipped bin and holds
    the edge snippets' values outside the centre range. ``L == 1`` repeats the snippet (BSN).
    ``num_sample_perbin == 1`` samples the clipped bin's middle (BSN divides by zero there).

    Not the identity when ``L == T``: bin k averages the interpolated values at k, k+0.5 and k+1
    (snippet units), i.e. ``f[k-1]/6 + 2 f[k]/3 + f[k+1]/6`` inside, ``0.75 f[0] + 0.25 f[1]`` at
    the first bin -- a light smoothing. The dataset therefore uses features whose length already
    equals T as they are (``rescale="auto"``; BSN's ``csv_mean_100`` files are the output of this
    function) and rescales only other lengths.

    ``eps``: BSN's 1e-4, here in snippet units (BSN: seconds; a snippet is ~0.5 s). Float64
    arithmetic, float32 result.
    """
    x = np.asarray(feats, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"rescale_snippets: expected features [L, C] with L >= 1, got {x.shape}")
    if T < 1 or num_sample_perbin < 1:
        raise ValueError(f"rescale_snippets: T and num_sample_perbin must be >= 1 "
                         f"(got {T}, {num_sample_perbin})")
    if edge not in ("bsn", "clamp"):
        raise ValueError(f"rescale_snippets: edge must be 'bsn' or 'clamp', got {edge!r}")
    L = x.shape[0]
    if L == 1:
        return np.repeat(x, T, axis=0).astype(np.float32)
    n = num_sample_perbin
    k = np.arange(T, dtype=np.float64)
    a = k * L / T
    b = (k + 1) * L / T
    lo, hi = 0.5, L - 0.5
    if edge == "bsn":
        xmin = np.maximum(lo + eps, a)
        xmax = np.minimum(hi - eps, b)
        empty = (xmax < lo) | (xmin > hi)
    else:
        xmin, xmax = a, b
        empty = np.zeros(T, dtype=bool)
    if n == 1:
        pos = ((xmin + xmax) / 2)[:, None]
    else:
        plen = (xmax - xmin) / (n - 1)
        pos = xmin[:, None] + plen[:, None] * np.arange(n)[None, :]  # [T, n]
    u = np.clip(pos - 0.5, 0.0, L - 1.0)  # index space, edge values held (only "clamp" needs it)
    i0 = np.minimum(np.floor(u).astype(np.int64), L - 2)
    w = (u - i0)[..., None]
    vals = x[i0] * (1.0 - w) + x[i0 + 1] * w  # [T, n, C]
    out = vals.mean(axis=1)
    out[empty] = 0.0
    return out.astype(np.float32)


# --------------------------------------------------------------------------------------------
# labels (BMN's _get_train_label, vectorised)


def boundary_anchors(T: int, anchors: str = "bmn") -> Tuple[np.ndarray, np.ndarray]:
    """Start and end anchors ``[T, 2]`` (xmin, xmax) in normalised time; see the module docstring.

    ``"bmn"``: ``[(k - 0.5) / T, (k + 1.5) / T]`` for both (JJBOY / mmaction2); ``"aligned"``:
    start ``[(k - 0.5) / T, (k + 0.5) / T]``, end ``[(k + 0.5) / T, (k + 1.5) / T]``; ``"bsn"``:
    ``[k / T, (k + 1) / T]`` for both.
    """
    k = np.arange(T, dtype=np.float64)
    g = 1.0 / T
    if anchors == "bmn":
        s = np.stack([g * (k - 0.5), g * (k + 1.5)], axis=1)
        return s, s.copy()
    if anchors == "aligned":
        return (np.stack([g * (k - 0.5), g * (k + 0.5)], axis=1),
                np.stack([g * (k + 0.5), g * (k + 1.5)], axis=1))
    if anchors == "bsn":
        s = np.stack([g * k, g * (k + 1)], axis=1)
        return s, s.copy()
    raise ValueError(f"anchors must be 'bmn', 'aligned' or 'bsn', got {anchors!r}")


def _ioa(anchor: np.ndarray, box_min: np.ndarray, box_max: np.ndarray) -> np.ndarray:
    """BMN's ``ioa_with_anchors`` for [T] anchors x [G] boxes -> [T, G]."""
    amin, amax = anchor[:, :1], anchor[:, 1:]
    inter = np.maximum(np.minimum(amax, box_max[None]) - np.maximum(amin, box_min[None]), 0.0)
    return inter / (amax - amin)


def boundary_targets(gt: np.ndarray, T: int, boundary_width: Union[float, str] = 3.0,
                     anchors: str = "bmn") -> Tuple[np.ndarray, np.ndarray]:
    """Start / end targets ``[T]`` (float32) for normalised GT segments ``gt [G, 2]``.

    BMN: regions ``[b - w/2, b + w/2]`` around every GT start (end) b, ``w = boundary_width / T``
    (BMN: 3); ``boundary_width="bsn"``: ``w = max(1/T, 0.1 * (end - start))`` per segment
    (BSN's TEM). Target k = max over segments of IoA(anchor k, region). No segment: zeros.
    """
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 2)
    if gt.shape[0] == 0:
        z = np.zeros(T, dtype=np.float32)
        return z, z.copy()
    starts, ends = gt[:, 0], gt[:, 1]
    if isinstance(boundary_width, str):
        if boundary_width != "bsn":
            raise ValueError(f"boundary_width must be a number (in units of 1/T) or 'bsn', "
                             f"got {boundary_width!r}")
        w = np.maximum(1.0 / T, 0.1 * (ends - starts))
    else:
        if not boundary_width > 0:
            raise ValueError(f"boundary_width must be positive, got {boundary_width}")
        w = np.full_like(starts, float(boundary_width) / T)
    a_start, a_end = boundary_anchors(T, anchors)
    start = _ioa(a_start, starts - w / 2, starts + w / 2).max(axis=1)
    end = _ioa(a_end, ends - w / 2, ends + w / 2).max(axis=1)
    return start.astype(np.float32), end.astype(np.float32)


def proposal_map_bounds(D: int, T: int) -> Tuple[np.ndarray, np.ndarray]:
    """Normalised (start, end) of every map cell, each ``[D, T]``: cell ``[d, s]`` is
    ``[s / T, (s + d + 1) / T]`` (BMN's duration x start match map)."""
    d = np.arange(D, dtype=np.float64)[:, None]
    s = np.arange(T, dtype=np.float64)[None, :]
    return np.broadcast_to(s / T, (D, T)).copy(), (s + d + 1) / T


def valid_map_mask(D: int, T: int) -> np.ndarray:
    """bool ``[D, T]``: True where cell ``[d, s]``'s proposal ends inside the video,
    ``s + d + 1 <= T`` (proposals ending exactly at the video end included)."""
    d = np.arange(D)[:, None]
    s = np.arange(T)[None, :]
    return (s + d + 1) <= T


def iou_map_targets(gt: np.ndarray, T: int, D: Optional[int] = None) -> np.ndarray:
    """IoU-map target ``[D, T]`` float32: cell ``[d, s]`` = max IoU of ``[s/T, (s+d+1)/T]`` with
    the GT segments (BMN's ``iou_with_anchors``: ``inter / (len_p + len_g - inter)``), 0 at
    invalid cells (``s + d + 1 > T``) and when there is no segment."""
    D = T if D is None else int(D)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 2)
    if gt.shape[0] == 0:
        return np.zeros((D, T), dtype=np.float32)
    ps, pe = proposal_map_bounds(D, T)
    gs, ge = gt[:, 0][:, None, None], gt[:, 1][:, None, None]
    inter = np.maximum(np.minimum(pe[None], ge) - np.maximum(ps[None], gs), 0.0)
    union = (pe - ps)[None] - inter + (ge - gs)
    iou = (inter / union).max(axis=0)
    iou[~valid_map_mask(D, T)] = 0.0
    return iou.astype(np.float32)


def make_targets(gt: np.ndarray, T: int, D: Optional[int] = None,
                 boundary_width: Union[float, str] = 3.0, anchors: str = "bmn"
                 ) -> Dict[str, np.ndarray]:
    """``{"start": [T], "end": [T], "iou_map": [D, T]}`` (float32) for normalised ``gt [G, 2]``."""
    start, end = boundary_targets(gt, T, boundary_width, anchors)
    return {"start": start, "end": end, "iou_map": iou_map_targets(gt, T, D)}


def normalized_segments(record: VideoRecord, offset_seconds: float = 0.0,
                        window_seconds: Optional[float] = None) -> np.ndarray:
    """GT segments of ``record`` in normalised time, float64 ``[G, 2]``.

    Whole video (default): ``clip(t / feature_seconds, 0, 1)`` for every segment (BMN). Window:
    ``(t - offset_seconds) / window_seconds``, keeping only segments that intersect the window,
    clipped to [0, 1].
    """
    if not record.segments:
        return np.zeros((0, 2))
    seg = np.array([[s, e] for (s, e, _) in record.segments], dtype=np.float64)
    if window_seconds is None:
        return np.clip(seg / record.feature_seconds, 0.0, 1.0)
    rel = (seg - offset_seconds) / window_seconds
    keep = (rel[:, 1] > 0.0) & (rel[:, 0] < 1.0)
    return np.clip(rel[keep], 0.0, 1.0)


# --------------------------------------------------------------------------------------------
# scanning the feature files before training


@dataclass
class ScanReport:
    """What :func:`scan_features` found. ``str(report)`` is a one-paragraph summary."""

    total: int = 0
    usable: int = 0
    channels: Optional[int] = None
    missing: List[str] = field(default_factory=list)
    malformed: List[Tuple[str, str]] = field(default_factory=list)
    min_snippets: Optional[int] = None
    max_snippets: Optional[int] = None
    mean_snippets: Optional[float] = None

    @property
    def ok(self) -> bool:
        return not self.missing and not self.malformed

    def summary(self, max_names: int = 5) -> str:
        s = (f"features: {self.usable}/{self.total} videos usable"
             + (f", C={self.channels}" if self.channels is not None else "")
             + (f", L in [{self.min_snippets}, {self.max_snippets}] (mean {self.mean_snippets:.1f})"
                if self.min_snippets is not None else ""))
        if self.missing:
            s += (f"; {len(self.missing)} missing (skipped), first: "
                  + ", ".join(self.missing[:max_names]))
        if self.malformed:
            s += (f"; {len(self.malformed)} malformed (skipped), first: "
                  + "; ".join(f"{v}: {why}" for v, why in self.malformed[:max_names]))
        return s

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _probe(store: FeatureStore, rec: VideoRecord, check_finite: bool):
    key = rec.feature_key
    try:
        if not store.has(key):
            return ("missing", None)
        arr = store.load(key)
    except MissingFeatureError:
        return ("missing", None)
    except (FormatError, ValueError, OSError, KeyError) as e:
        return ("malformed", str(e))
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        return ("malformed", f"{store.describe(key)}: expected [L, C], got shape {arr.shape}")
    if check_finite and not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        return ("malformed", f"{store.describe(key)}: {bad} non-finite value(s)")
    return ("ok", tuple(int(v) for v in arr.shape))


def scan_features(records: Sequence[VideoRecord], store: FeatureStore,
                  expected_channels: Optional[int] = None, check_finite: bool = True,
                  workers: Optional[int] = None, require_any: bool = True
                  ) -> Tuple[List[VideoRecord], ScanReport]:
    """Check every record's feature file before training; return the usable records and a report.

    A record is *missing* when the store has no features for it and *malformed* when they do not
    parse (:class:`FormatError` names the file), are not ``[L, C]``, hold non-finite values
    (``check_finite``) or have a channel count other than ``expected_channels`` (default: the most
    common count). Both are skipped and reported (count and first names, logged as a warning), so
    that no epoch crashes on a bad file. Usable records come back in order with
    ``num_snippets`` / ``num_channels`` filled. ``require_any`` raises ``ValueError`` (with the
    report) when nothing is usable. ``workers`` threads read files (default min(8, CPUs)).
    """
    records = list(records)
    workers = workers or min(8, os.cpu_count() or 1)
    if workers > 1 and len(records) > 16 and not isinstance(store, Hdf5FeatureFile):
        with ThreadPoolExecutor(workers) as ex:
            results = list(ex.map(lambda r: _probe(store, r, check_finite), records))
    else:
        results = [_probe(store, r, check_finite) for r in records]
    report = ScanReport(total=len(records))
    shapes = [res[1] for res in results if res[0] == "ok"]
    channels = expected_channels
    if channels is None and shapes:
        channels = Counter(c for _, c in shapes).most_common(1)[0][0]
    report.channels = channels
    usable: List[VideoRecord] = []
    lengths = []
    for rec, (status, info) in zip(records, results):
        if status == "missing":
            report.missing.append(rec.video_id)
        elif status == "malformed":
            report.malformed.append((rec.video_id, info))
        elif info[1] != channels:
            report.malformed.append((rec.video_id, f"{store.describe(rec.feature_key)}: "
                                                   f"{info[1]} channels, expected {channels}"))
        else:
            usable.append(dataclasses.replace(rec, num_snippets=info[0], num_channels=info[1]))
            lengths.append(info[0])
    report.usable = len(usable)
    if lengths:
        report.min_snippets, report.max_snippets = int(min(lengths)), int(max(lengths))
        report.mean_snippets = float(np.mean(lengths))
    if report.ok:
        log.info("%s", report.summary())
    else:
        log.warning("%s", report.summary())
    if require_any and not usable and records:
        raise ValueError(f"no usable feature files ({store!r}): {report.summary()}")
    return usable, report


# --------------------------------------------------------------------------------------------
# dataset


class ProposalDataset(Dataset):
    """BMN-style dataset: features ``[C, T]`` and the BSN++/BMN targets (module docstring).

    Args:
        records: the videos (ideally the usable records of :func:`scan_features`).
        store: where the features live (:class:`CsvFeatureFolder`, :class:`Hdf5FeatureFile`).
        temporal_scale: T (ActivityNet: 100). Ignored with ``window`` (T = window).
        max_duration: D, the rows of the IoU map (default T).
        mode: ``"train"`` (targets always; videos without GT segments dropped) or ``"infer"``
            (features and bookkeeping; targets only with ``with_labels=True``).
        window, stride: THUMOS sliding windows of ``window`` raw snippets (default stride
            ``window // 2``) instead of rescaling the whole video to T.
        boundary_width, anchors: see :func:`boundary_targets` (``--boundary-width``).
        rescale: ``"auto"`` (rescale with :func:`rescale_snippets` unless L == T) or
            ``"always"``; ``num_sample_perbin``, ``rescale_edge`` are passed on.
        max_segments: G of the padded ``segments`` output (default: the most GT segments of any
            video, at least 1).
        cache_bytes: keep processed items in memory up to this many bytes (per process; a toy
            set fits entirely, real data is read lazily per item). :meth:`preload` fills it
            before DataLoader workers fork.

    An item is a dict: ``features`` float32 [C, T]; ``index`` (item), ``video_index`` (into
    ``records``), ``offset_seconds``, ``window_seconds`` (normalised [a, b] -> seconds
    ``offset + [a, b] * window``), ``duration``; with targets also ``start`` [T], ``end`` [T],
    ``iou_map`` [D, T], ``segments`` [G, 2] (-1 padded) and ``num_segments``.
    """

    def __init__(self, records: Sequence[VideoRecord], store: FeatureStore,
                 temporal_scale: int = 100, max_duration: Optional[int] = None,
                 mode: str = "train", window: Optional[int] = None, stride: Optional[int] = None,
                 boundary_width: Union[float, str] = 3.0, anchors: str = "bmn",
                 rescale: str = "auto", num_sample_perbin: int = 3, rescale_edge: str = "bsn",
                 with_labels: Optional[bool] = None, max_segments: Optional[int] = None,
                 cache_bytes: int = 256 << 20):
        if mode not in ("train", "infer"):
            raise ValueError(f"mode must be 'train' or 'infer', got {mode!r}")
        if rescale not in ("auto", "always"):
            raise ValueError(f"rescale must be 'auto' or 'always', got {rescale!r}")
        if isinstance(boundary_width, str) and boundary_width != "bsn":
            raise ValueError(f"boundary_width must be a number (units of 1/T) or 'bsn', "
                             f"got {boundary_width!r}")
        if not isinstance(boundary_width, str) and not boundary_width > 0:
            raise ValueError(f"boundary_width must be positive, got {boundary_width}")
        boundary_anchors(1, anchors)  # validates the name
        self.store = store
        self.mode = mode
        self.window = int(window) if window else None
        self.T = self.window if self.window else int(temporal_scale)
        self.D = int(max_duration) if max_duration else self.T
        if not 1 <= self.D <= self.T:
            raise ValueError(f"max_duration must be in [1, T={self.T}], got {self.D}")
        self.stride = int(stride) if stride else (max(1, self.window // 2) if self.window else None)
        self.boundary_width = boundary_width
        self.anchors = anchors
        self.rescale = rescale
        self.num_sample_perbin = num_sample_perbin
        self.rescale_edge = rescale_edge
        self.with_labels = (mode == "train") if with_labels is None else bool(with_labels)
        if mode == "train" and not self.with_labels:
            raise ValueError("mode='train' always returns targets (with_labels=False given)")
        self.cache_bytes = int(cache_bytes)
        self._cache: Dict[int, dict] = {}
        self._cache_used = 0
        self.stats: Dict[str, int] = {}

        records = list(records)
        if mode == "train":
            empty = [r.video_id for r in records if not r.segments]
            if empty:
                log.info("ProposalDataset: %d training video(s) without GT segments dropped",
                         len(empty))
            self.stats["videos_without_segments"] = len(empty)
            records = [r for r in records if r.segments]
        self.records: List[VideoRecord] = records
        need = max([len(r.segments) for r in records] + [1])
        if max_segments is not None and max_segments < need:
            raise ValueError(f"max_segments={max_segments} but a video has {need} GT segments")
        self.max_segments = int(max_segments) if max_segments is not None else need

        # items: (record index, offset in snippets)
        self.items: List[Tuple[int, int]] = []
        if self.window is None:
            self.items = [(i, 0) for i in range(len(records))]
        else:
            no_window = 0
            for i, r in enumerate(records):
                L = r.num_snippets if r.num_snippets else store.shape(r.feature_key)[0]
                if r.num_snippets is None:
                    self.records[i] = r = dataclasses.replace(r, num_snippets=int(L))
                offs = self._window_offsets(L)
                if mode == "train":
                    offs = [o for o in offs if self._has_full_segment(r, o)]
                    if not offs:
                        no_window += 1
                self.items.extend((i, o) for o in offs)
            self.stats["videos_without_training_window"] = no_window
            if no_window:
                log.info("ProposalDataset: %d video(s) have no window holding a whole GT segment",
                         no_window)
        self.stats["items"] = len(self.items)

    # ---------------------------------------------------------------- windows
    def _window_offsets(self, L: int) -> List[int]:
        W, S = self.window, self.stride
        if L <= W:
            return [0]
        offs = list(range(0, L - W + 1, S))
        if offs[-1] != L - W:
            offs.append(L - W)
        return offs

    def _snippet_seconds(self, rec: VideoRecord) -> float:
        return rec.feature_seconds / rec.num_snippets

    def _has_full_segment(self, rec: VideoRecord, off: int) -> bool:
        sec = self._snippet_seconds(rec)
        t0, t1 = off * sec, (off + self.window) * sec
        tol = 1e-9 * max(1.0, t1)
        return any(s >= t0 - tol and e <= t1 + tol for (s, e, _) in rec.segments)

    # ---------------------------------------------------------------- bookkeeping
    def __len__(self) -> int:
        return len(self.items)

    def item_info(self, index: int) -> Dict[str, Any]:
        """``video_id``, ``video_index``, ``offset_seconds``, ``window_seconds``, ``duration``,
        ``offset_snippets`` of item ``index`` (what post-processing needs to map back)."""
        ri, off = self.items[index]
        rec = self.records[ri]
        if self.window is None:
            off_s, win_s = 0.0, rec.feature_seconds
        else:
            sec = self._snippet_seconds(rec)
            off_s, win_s = off * sec, self.window * sec
        return {"video_id": rec.video_id, "video_index": ri, "offset_seconds": float(off_s),
                "window_seconds": float(win_s), "duration": float(rec.duration),
                "offset_snippets": int(off)}

    def to_video_time(self, index: int, segments: Any) -> np.ndarray:
        """Normalised ``[N, 2]`` proposals of item ``index`` -> seconds in the video,
        ``offset_seconds + seg * window_seconds`` clipped to ``[0, duration]``."""
        info = self.item_info(index)
        seg = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
        t = info["offset_seconds"] + seg * info["window_seconds"]
        return np.clip(t, 0.0, info["duration"])

    # ---------------------------------------------------------------- loading
    def _features(self, ri: int, off: int) -> np.ndarray:
        rec = self.records[ri]
        if self.window is None:
            x = self.store.load(rec.feature_key)
            if x.ndim != 2:
                raise FormatError(f"{self.store.describe(rec.feature_key)}: expected [L, C], "
                                  f"got {x.shape}")
            if not (self.rescale == "auto" and x.shape[0] == self.T):
                x = rescale_snippets(x, self.T, self.num_sample_perbin, self.rescale_edge)
        else:
            x = self.store.load_range(rec.feature_key, off, off + self.window)
            if x.shape[0] < self.window:
                pad = np.zeros((self.window - x.shape[0], x.shape[1]), dtype=np.float32)
                x = np.concatenate([x, pad], axis=0)
        return np.ascontiguousarray(np.asarray(x, dtype=np.float32).T)  # [C, T]

    def _build(self, index: int) -> dict:
        ri, off = self.items[index]
        info = self.item_info(index)
        item = {"features": self._features(ri, off)}
        if self.with_labels:
            rec = self.records[ri]
            if self.window is None:
                gt = normalized_segments(rec)
            else:
                gt = normalized_segments(rec, info["offset_seconds"], info["window_seconds"])
            item.update(make_targets(gt, self.T, self.D, self.boundary_width, self.anchors))
            seg = np.full((self.max_segments, 2), -1.0, dtype=np.float32)
            seg[:len(gt)] = gt
            item["segments"] = seg
            item["num_segments"] = len(gt)
        return item

    def __getitem__(self, index: int) -> dict:
        if index < 0:
            index += len(self)
        item = self._cache.get(index)
        if item is None:
            item = self._build(index)
            size = sum(v.nbytes for v in item.values() if isinstance(v, np.ndarray))
            if self._cache_used + size <= self.cache_bytes:
                self._cache[index] = item
                self._cache_used += size
        info = self.item_info(index)
        out = {k: (torch.from_numpy(v.copy()) if isinstance(v, np.ndarray) else v)
               for k, v in item.items()}
        out.update(index=index, video_index=info["video_index"],
                   offset_seconds=info["offset_seconds"], window_seconds=info["window_seconds"],
                   duration=info["duration"])
        return out

    def preload(self) -> int:
        """Build items into the cache (until ``cache_bytes``); returns how many are cached."""
        for i in range(len(self)):
            if self._cache_used >= self.cache_bytes:
                break
            if i not in self._cache:
                self[i]
        return len(self._cache)

    @property
    def num_channels(self) -> Optional[int]:
        chans = {r.num_channels for r in self.records if r.num_channels}
        return chans.pop() if len(chans) == 1 else None

    def __repr__(self) -> str:
        kind = f"window={self.window}, stride={self.stride}" if self.window else f"T={self.T}"
        return (f"ProposalDataset({len(self.records)} videos, {len(self)} items, {kind}, "
                f"D={self.D}, mode={self.mode!r}, store={self.store!r})")
