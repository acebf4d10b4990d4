"""BSN++ datasets: feature stores, the pre-training scan of feature files, and the dataset that
pairs each video's rescaled features with its targets (``bsnpp.labels``).

Records come from ``bsnpp.records``; rescaling and targets from ``bsnpp.labels``, whose
docstring states the conventions (normalised time, the [D, T] map, boundary anchors).

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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from bsnpp.labels import boundary_anchors, make_targets, normalized_segments, rescale_snippets
from bsnpp.records import VideoRecord
from shared.formats.activitynet import (
    CsvFeatureFolder,
    FeatureStore,
    FormatError,
    Hdf5FeatureFile,
    MissingFeatureError,
)

log = logging.getLogger(__name__)
PathLike = Union[str, os.PathLike]

__all__ = ["open_feature_store", "ScanReport", "scan_features", "ProposalDataset"]


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
# scanning the feature files before training


@dataclass
class ScanReport:
    """What :func:`scan_features` found. ``str(report)`` is a one-paragraph summary."""

    total: int = 0
    usable: int = 0
    channels: int | None = None
    missing: list[str] = field(default_factory=list)
    malformed: list[tuple[str, str]] = field(default_factory=list)
    min_snippets: int | None = None
    max_snippets: int | None = None
    mean_snippets: float | None = None

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
                  expected_channels: int | None = None, check_finite: bool = True,
                  workers: int | None = None, require_any: bool = True
                  ) -> tuple[list[VideoRecord], ScanReport]:
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
    usable: list[VideoRecord] = []
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
                 temporal_scale: int = 100, max_duration: int | None = None,
                 mode: str = "train", window: int | None = None, stride: int | None = None,
                 boundary_width: float | str = 3.0, anchors: str = "bmn",
                 rescale: str = "auto", num_sample_perbin: int = 3, rescale_edge: str = "bsn",
                 with_labels: bool | None = None, max_segments: int | None = None,
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
        self._cache: dict[int, dict] = {}
        self._cache_used = 0
        self.stats: dict[str, int] = {}

        records = list(records)
        if mode == "train":
            empty = [r.video_id for r in records if not r.segments]
            if empty:
                log.info("ProposalDataset: %d training video(s) without GT segments dropped",
                         len(empty))
            self.stats["videos_without_segments"] = len(empty)
            records = [r for r in records if r.segments]
        self.records: list[VideoRecord] = records
        need = max([len(r.segments) for r in records] + [1])
        if max_segments is not None and max_segments < need:
            raise ValueError(f"max_segments={max_segments} but a video has {need} GT segments")
        self.max_segments = int(max_segments) if max_segments is not None else need

        # items: (record index, offset in snippets)
        self.items: list[tuple[int, int]] = []
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
    def _window_offsets(self, L: int) -> list[int]:
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

    def item_info(self, index: int) -> dict[str, Any]:
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

    def targets(self, index: int) -> dict:
        """Item ``index``'s targets without reading its features: ``start``, ``end``,
        ``iou_map``, ``segments`` (-1 padded) and ``num_segments`` (see ``bsnpp.labels``)."""
        ri, _ = self.items[index]
        rec = self.records[ri]
        if self.window is None:
            gt = normalized_segments(rec)
        else:
            info = self.item_info(index)
            gt = normalized_segments(rec, info["offset_seconds"], info["window_seconds"])
        item = make_targets(gt, self.T, self.D, self.boundary_width, self.anchors)
        seg = np.full((self.max_segments, 2), -1.0, dtype=np.float32)
        seg[:len(gt)] = gt
        item["segments"] = seg
        item["num_segments"] = len(gt)
        return item

    def _build(self, index: int) -> dict:
        ri, off = self.items[index]
        item = {"features": self._features(ri, off)}
        if self.with_labels:
            item.update(self.targets(index))
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
    def num_channels(self) -> int | None:
        chans = {r.num_channels for r in self.records if r.num_channels}
        return chans.pop() if len(chans) == 1 else None

    def __repr__(self) -> str:
        kind = f"window={self.window}, stride={self.stride}" if self.window else f"T={self.T}"
        return (f"ProposalDataset({len(self.records)} videos, {len(self)} items, {kind}, "
                f"D={self.D}, mode={self.mode!r}, store={self.store!r})")
