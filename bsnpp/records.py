"""BSN++ video records: every supported annotation file -> one list of :class:`VideoRecord`.

Readers of the files only bsnpp uses live here (the ActivityNet ground truth itself is read by
``shared.formats.activitynet``, which actnet_challenge and the evaluator share):

* BSN/BMN's preprocessed annotations (wzmsltw/BSN-boundary-sensitive-network,
  ``data/activitynet_annotations``; JJBOY/BMN-Boundary-Matching-Network reads the same files):
  ``video_info_new.csv``, header ``video,numFrame,seconds,fps,rfps,subset,featureFrame``, one row
  per video named ``v_<id>`` (``featureFrame`` = 16 x number of snippets; it may exceed
  ``numFrame`` by a few frames), and ``anet_anno_action.json``, ``{"v_<id>": {"duration_second",
  "duration_frame", "feature_frame", "annotations": [{"segment", "label"}]}}`` (no subset;
  testing videos have empty annotations);
* the THUMOS14 annotation CSV (as written by the DAPs/BSN tooling),
  ``video-name,t-init,t-end,f-init,f-end,video-duration,frame-rate,video-frames,label-idx``, one
  row per segment; ``label-idx == -1`` marks an *Ambiguous* segment (kept, flagged). A leading
  unnamed index column (``pandas.DataFrame.to_csv`` with its index) is tolerated.

Every reader raises ``FormatError`` naming the file, the line or video and the key at fault.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from shared.formats.activitynet import load_json, normalize_video_id, read_ground_truth
from shared.formats.activitynet.common import (
    FormatError,
    check_annotations,
    check_number,
    csv_number,
    fail,
    read_csv_rows,
)

log = logging.getLogger(__name__)

__all__ = ["VideoRecord", "load_records", "read_video_info_csv", "read_anno_action_json", "read_thumos_csv"]

PathLike = Union[str, os.PathLike]
PathOrDict = Union[str, os.PathLike, Mapping]


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
    segments: tuple[tuple[float, float, Any], ...]
    feature_key: str
    feature_seconds: float
    num_snippets: int | None = None
    num_channels: int | None = None
    fps: float | None = None


def _sniff(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".csv"):
        with open(path, encoding="utf-8") as f:
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


def load_records(*sources: PathLike | Mapping, subset: None | str | Iterable[str] = None,
                 keep_ambiguous: bool = False) -> list[VideoRecord]:
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
    parsed: list[tuple[str, str, dict[str, dict]]] = []  # (kind, name, {norm_id: fields})
    for src in sources:
        name = "<dict>" if isinstance(src, Mapping) else str(src)
        if isinstance(src, Mapping):
            kind = "activitynet" if "database" in src else "anno_action"
        else:
            src = Path(src)
            if not src.is_file():
                raise FileNotFoundError(f"{src}: no such annotation file")
            kind = _sniff(src)
        entries: dict[str, dict] = {}
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
    order: list[str] = []
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

    records: list[VideoRecord] = []
    bad_duration: list[str] = []
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


# --------------------------------------------------------------------------------------------
# BSN and THUMOS files


_VIDEO_INFO_COLUMNS = ("video", "numFrame", "seconds", "fps", "rfps", "subset", "featureFrame")



def read_video_info_csv(path: PathLike) -> dict[str, dict]:
    """Read BSN's ``video_info_new.csv`` (``video,numFrame,seconds,fps,rfps,subset,featureFrame``).

    Returns ``{video: {"num_frames": int, "seconds": float, "fps": float, "rfps": float,
    "subset": str, "feature_frame": int}}`` in file order; ``video`` keeps its ``v_`` prefix.
    Extra columns are ignored; a missing column, a non-numeric or non-positive count / duration
    or a duplicated video raises :class:`FormatError` naming the file, line and video.
    """
    header, body = read_csv_rows(path)
    missing = [c for c in _VIDEO_INFO_COLUMNS if c not in header]
    if missing:
        raise fail(path, f"missing column(s) {missing} (expected header "
                          f"{','.join(_VIDEO_INFO_COLUMNS)}; got {','.join(header)})")
    col = {c: header.index(c) for c in _VIDEO_INFO_COLUMNS}
    out: dict[str, dict] = {}
    for i, r in enumerate(body):
        video = r[col["video"]].strip()
        where = f"line {i + 2} (video {video!r})"
        if not video:
            raise fail(path, f"line {i + 2}: empty 'video'")
        if video in out:
            raise fail(path, f"{where}: duplicated video")
        rec = {
            "num_frames": csv_number(path, r[col["numFrame"]], f"{where} numFrame", integer=True),
            "seconds": csv_number(path, r[col["seconds"]], f"{where} seconds"),
            "fps": csv_number(path, r[col["fps"]], f"{where} fps"),
            "rfps": csv_number(path, r[col["rfps"]], f"{where} rfps"),
            "subset": r[col["subset"]].strip(),
            "feature_frame": csv_number(path, r[col["featureFrame"]], f"{where} featureFrame",
                                         integer=True),
        }
        for key in ("num_frames", "seconds", "feature_frame"):
            if rec[key] <= 0:
                raise fail(path, f"{where}: {key} must be positive, got {rec[key]}")
        out[video] = rec
    return out


def read_anno_action_json(path_or_dict: PathOrDict) -> dict[str, dict]:
    """Read BSN's ``anet_anno_action.json``.

    Returns ``{video: {"duration_second": float, "duration_frame": int, "feature_frame": int,
    "annotations": [(start, end, label), ...]}}`` with ids as written (``v_<id>``). Durations and
    frame counts must be positive numbers; see :func:`read_ground_truth` for the annotations.
    """
    data = load_json(path_or_dict)
    src = path_or_dict
    if "database" in data:
        raise fail(src, "this is an ActivityNet ground-truth file (top-level 'database'); "
                         "read it with read_ground_truth")
    out: dict[str, dict] = {}
    for vid, info in data.items():
        where = f"video {vid!r}"
        if not isinstance(info, Mapping):
            raise fail(src, f"{where}: expected an object, got {type(info).__name__}")
        for key in ("duration_second", "duration_frame", "feature_frame"):
            if key not in info:
                raise fail(src, f"{where}: missing key {key!r}")
        rec = {
            "duration_second": check_number(src, info["duration_second"], f"{where} 'duration_second'"),
            "duration_frame": check_number(src, info["duration_frame"], f"{where} 'duration_frame'",
                                      integer=True),
            "feature_frame": check_number(src, info["feature_frame"], f"{where} 'feature_frame'",
                                     integer=True),
        }
        for key, v in rec.items():
            if v <= 0:
                raise fail(src, f"{where}: {key!r} must be positive, got {v}")
        rec["annotations"] = check_annotations(src, info.get("annotations", []), where)
        out[str(vid)] = rec
    return out


_THUMOS_REQUIRED = ("video-name", "t-init", "t-end", "video-duration", "frame-rate", "label-idx")


def read_thumos_csv(path: PathLike) -> dict[str, dict]:
    """Read a THUMOS14 annotation CSV (``video-name,t-init,t-end,f-init,f-end,video-duration,
    frame-rate,video-frames,label-idx``; one row per segment).

    Returns ``{video: {"duration": float, "fps": float, "num_frames": int or None,
    "annotations": [(t_init, t_end, label_idx, ambiguous), ...]}}`` in order of first appearance.
    ``label_idx`` is an int; ``ambiguous`` is True for ``label-idx == -1`` (THUMOS's *Ambiguous*
    segments are kept and flagged; dropping them is the caller's choice). ``f-init``, ``f-end`` and
    ``video-frames`` are optional. Rows of one video must agree on duration and frame rate.
    """
    header, body = read_csv_rows(path)
    if header and header[0] == "" and "video-name" in header:  # pandas index column
        header = header[1:]
        body = [r[1:] for r in body]
    missing = [c for c in _THUMOS_REQUIRED if c not in header]
    if missing:
        raise fail(path, f"missing column(s) {missing} (got {','.join(header)})")
    col = {c: header.index(c) for c in header}
    out: dict[str, dict] = {}
    for i, r in enumerate(body):
        video = r[col["video-name"]].strip()
        where = f"line {i + 2} (video {video!r})"
        if not video:
            raise fail(path, f"line {i + 2}: empty 'video-name'")
        t0 = csv_number(path, r[col["t-init"]], f"{where} t-init")
        t1 = csv_number(path, r[col["t-end"]], f"{where} t-end")
        if t1 < t0:
            raise fail(path, f"{where}: t-end {t1} is before t-init {t0}")
        duration = csv_number(path, r[col["video-duration"]], f"{where} video-duration")
        fps = csv_number(path, r[col["frame-rate"]], f"{where} frame-rate")
        if duration <= 0 or fps <= 0:
            raise fail(path, f"{where}: video-duration and frame-rate must be positive")
        label = csv_number(path, r[col["label-idx"]], f"{where} label-idx", integer=True)
        nframes = None
        if "video-frames" in col and r[col["video-frames"]].strip():
            nframes = csv_number(path, r[col["video-frames"]], f"{where} video-frames",
                                  integer=True)
        rec = out.get(video)
        if rec is None:
            rec = out[video] = {"duration": duration, "fps": fps, "num_frames": nframes,
                                "annotations": []}
        elif abs(rec["duration"] - duration) > 1e-3 or abs(rec["fps"] - fps) > 1e-3:
            raise fail(path, f"{where}: video-duration / frame-rate ({duration}, {fps}) disagree "
                              f"with an earlier row ({rec['duration']}, {rec['fps']})")
        rec["annotations"].append((t0, t1, int(label), int(label) == -1))
    return out
