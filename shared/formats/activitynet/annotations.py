"""The ActivityNet-1.3 ground-truth JSON (``activity_net.v1-3.min.json``, the official release)::

    {"version": "VERSION 1.3", "taxonomy": [...],
     "database": {"<youtube id>": {"duration": 82.73, "subset": "training",
                                    "resolution": "...", "url": "...",
                                    "annotations": [{"segment": [6.19, 77.73], "label": "Ballet"}]}}}

One parser, :func:`load_ground_truth`, reads it into columns (what the evaluators and the
datasets need, in file order); :func:`read_ground_truth` is its per-video view.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from shared.formats.activitynet.common import PathOrDict, check_annotations, check_number, fail, load_json

__all__ = ["GroundTruth", "load_ground_truth", "read_ground_truth"]


@dataclass
class GroundTruth:
    """A ground-truth file as columns; videos in file order, ids exactly as written.

    ``counts[i]`` annotations of video ``video_ids[i]`` are the next rows of ``segments`` [n, 2]
    (float64) and ``labels``; ``durations[i]`` is None when the file gives none.
    """

    source: str
    video_ids: list
    subsets: list
    durations: list
    counts: np.ndarray
    segments: np.ndarray
    labels: list

    @property
    def classes(self) -> list:
        """The sorted unique labels of all annotations."""
        return sorted(set(self.labels))


def load_ground_truth(src: PathOrDict, ordered_segments: bool = True) -> GroundTruth:
    """Read and validate a ground-truth file (``.json``, ``.json.gz`` or a parsed dict).

    Every video needs a string ``subset``; ``duration`` (optional) is a non-negative number; a
    missing ``annotations`` key means none (testing videos). Each annotation needs a
    ``segment`` of two finite numbers (``start <= end`` unless ``ordered_segments=False``, which
    the official evaluators do not check) and a string ``label``. Raises :class:`FormatError`
    naming the file, the video and the key.
    """
    data = load_json(src)
    db = data.get("database")
    if db is None:
        raise fail(src, "missing top-level key 'database' (not an ActivityNet ground-truth file)")
    if not isinstance(db, Mapping):
        raise fail(src, f"'database' must be an object keyed by video id, got {type(db).__name__}")
    video_ids, subsets, durations, counts, segs, labels = [], [], [], [], [], []
    for vid, info in db.items():
        where = f"video {vid!r}"
        if not isinstance(info, Mapping):
            raise fail(src, f"{where}: expected an object, got {type(info).__name__}")
        if "subset" not in info:
            raise fail(src, f"{where}: missing key 'subset'")
        if not isinstance(info["subset"], str):
            raise fail(src, f"{where}: 'subset' must be a string, got {info['subset']!r}")
        duration = info.get("duration")
        if duration is not None:
            duration = check_number(src, duration, f"{where} 'duration'", nonneg=True)
        annos = check_annotations(src, info.get("annotations"), where, ordered_segments)
        video_ids.append(str(vid))
        subsets.append(info["subset"])
        durations.append(duration)
        counts.append(len(annos))
        segs.extend((s, e) for s, e, _ in annos)
        labels.extend(lab for _, _, lab in annos)
    return GroundTruth(source="<dict>" if isinstance(src, Mapping) else str(src), video_ids=video_ids,
                       subsets=subsets, durations=durations, counts=np.asarray(counts, dtype=np.int64),
                       segments=np.asarray(segs, dtype=np.float64).reshape(-1, 2), labels=labels)


def read_ground_truth(path_or_dict: PathOrDict) -> tuple[dict[str, dict], list[str]]:
    """The per-video view of :func:`load_ground_truth`, where every video needs a duration.

    Returns ``(videos, classes)``: ``videos = {video_id: {"duration": float, "subset": str,
    "annotations": [(start, end, label), ...]}}`` in file order and ``classes`` the sorted unique
    labels.
    """
    gt = load_ground_truth(path_or_dict)
    videos = {}
    offsets = np.concatenate([[0], np.cumsum(gt.counts)]).tolist()
    seg = gt.segments.tolist()
    for i, vid in enumerate(gt.video_ids):
        if gt.durations[i] is None:
            raise fail(path_or_dict, f"video {vid!r}: missing key 'duration'")
        lo, hi = offsets[i], offsets[i + 1]
        videos[vid] = {"duration": gt.durations[i], "subset": gt.subsets[i],
                       "annotations": [(s, e, lab) for (s, e), lab in zip(seg[lo:hi], gt.labels[lo:hi])]}
    return videos, gt.classes
