"""ActivityNet temporal proposal (AR-AN, AUC) and detection (interpolated mAP) evaluation.

The reading, tIoU and tie rules both official protocols share live here with the proposal
protocol; the detection protocol is ``shared.metrics.activitynet_detection``.

Source and protocol
-------------------
A vectorised numpy reimplementation of the official evaluators in activitynet/ActivityNet,
``Evaluation/eval_proposal.py`` (``ANETproposal``), ``Evaluation/eval_detection.py``
(``ANETdetection``) and ``Evaluation/utils.py``, commit 82304fa9, run with ``check_status=False``
(the blocked-video web API is dead; ``exclude_videos`` plays its role). Tested to 1e-9 against
numbers printed by that code (``shared/tests/test_metrics_activitynet.py``).

Inputs are the official JSON formats, given as a path (``.json`` or ``.json.gz``) or as an
already parsed dict:

* ground truth: ``{"database": {video_id: {"subset", "annotations": [{"segment": [s, e],
  "label"}]}}, ...}``;
* submissions: ``{"results": {video_id: [{"segment": [s, e], "score"(, "label")}]}, ...}``.

tIoU of two segments: ``inter = max(0, min(e1, e2) - max(s1, s2))``,
``tIoU = inter / ((e1 - s1) + (e2 - s2) - inter)`` (exactly this sequence of float operations,
so that tIoUs which sit exactly on a threshold compare as in the official code).

Proposals (``evaluate_proposals``)
  * The evaluated videos are the ``subset`` videos having at least one annotation, in the order
    of the ground-truth file. Proposals of any other video are ignored, **but** every proposal in
    the file (other subsets, unknown videos) counts in the budget ratio
    ``ratio = max_avg_nr_proposals * n_videos / n_proposals_in_file``.
  * Per video, proposals are sorted by score, descending (``np.argsort(score)[::-1]``, numpy's
    default unstable sort, applied per video to the scores in file order, as the official
    ``Series.argsort()[::-1]`` does), and the first ``min(int(n * ratio), n)`` are kept.
  * The curve has 100 points, ``pcn = arange(1, 101) / 100 * max_avg * n_videos / n_kept`` (a
    fraction of each video's kept proposals); at point j a video uses its first
    ``min(int(n_kept_video * pcn_j), n_kept_video)`` proposals and a ground-truth segment is
    recalled at tIoU threshold t when one of them has tIoU >= t. ``recall[t, j]`` divides the
    recalled segments by all segments; ``avg_recall = recall.mean(0)``;
    ``proposals_per_video = pcn * n_kept / n_videos``.
  * A video without proposals counts its segments as misses (officially a single column of zero
    tIoU, so they are "recalled" only for a threshold <= 0; reproduced).
  * ``AUC = 100 * trapz(avg_recall, proposals_per_video) / proposals_per_video[-1]`` (the number
    the official code prints; a perfect detector scores 99, not 100).
  * ``AR@k`` is ``avg_recall`` at the curve point whose nominal number of proposals is k, i.e.
    index ``k * 100 / max_avg_nr_proposals - 1`` (index k - 1 for the ActivityNet budget of 100,
    as BSN/BMN report AR@1/5/10/100). It is given for k in (1, 5, 10, 50, 100, 200, 500, 1000)
    with k <= max_avg_nr_proposals; a k that falls between two curve points (AR@1 and AR@5 for
    the THUMOS budget 1000) is computed with the same rule at the fraction k / max_avg.
  * ``max_avg_nr_proposals=None`` (or 0) uses all proposals: n_proposals_in_file / n_videos.

Detection (``evaluate_detections``): ``shared.metrics.activitynet_detection``, which reads and
matches through this module.

Choices where the official code crashes or is silent
  * A predicted label absent from the subset's ground truth raises ``KeyError`` officially.
    Here those predictions are **skipped with a ``warnings.warn``** naming the labels, the count
    and the file (they cannot change any AP, since a class's AP only uses that class's
    predictions); pass ``unknown_labels="error"`` to raise ``ValueError`` instead.
  * A proposal file without proposals (or whose evaluated videos keep none) divides by zero
    officially; here recall is 0, ``proposals_per_video`` is the nominal
    ``arange(1, 101) / 100 * max_avg_nr_proposals`` and the AUC is 0.
  * No ground-truth instance in ``subset`` raises ``ValueError`` (officially: NaN or a crash).
  * Files are read through ``shared.formats.activitynet`` (``load_ground_truth``,
    ``load_submission``): only ``database`` (ground truth) and ``results`` (submissions) are
    required (the official code also demands ``version``/``taxonomy``/``external_data``); a
    subset video without an ``annotations`` key has no segments. Missing files raise
    ``FileNotFoundError``; malformed JSON, missing keys, segments that are not pairs of finite
    numbers, or missing / non-numeric / NaN scores raise ``FormatError`` (a ``ValueError``)
    naming the file, the video and the row. Segments with ``end < start`` are scored as the
    official code scores them (not refused).
  * Scores keep the dtype the official DataFrame would give them (int64 if all are integers,
    else float64), so that numpy's unstable sort breaks ties identically.

Speed: the per-prediction loops are replaced by array operations. Proposals: one [G, K, T]
comparison per video gives each ground-truth segment its first hit per threshold, from which
the whole curve follows. Detection: predictions whose tIoU with every ground-truth segment of
their (class, video) is below the lowest threshold are false positives that lock nothing and
skip the greedy loop; the greedy loop then handles the k-th prediction of every (class, video)
group in one vectorised step (the rule is sequential only within a group), falling back to
the exact scalar rule for the rare rows whose outcome depends on a tIoU tie or a NaN.
``shared/bench/bench_activitynet.py`` times it against a plain loop (2,000 videos, ~200k
detections: well under a second, against 88-181 s for the official code).

To score a file from the command line: ``bsnpp/eval.py --proposals FILE`` (AR@AN, AUC, the
AR-AN plot of ``shared.metrics.plots``) and ``actnet_challenge/eval.py --detections FILE`` (mAP).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from shared.formats.activitynet import load_ground_truth, load_submission
from shared.formats.activitynet.common import PathOrDict, describe

__all__ = ["segment_tiou", "evaluate_proposals", "parse_tiou_thresholds"]

DEFAULT_TIOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
THUMOS_TIOU_THRESHOLDS = np.linspace(0.3, 0.7, 5)
AR_POINTS = (1, 5, 10, 50, 100, 200, 500, 1000)
_N_CURVE_POINTS = 100


# --------------------------------------------------------------------------------------------
# tIoU
# --------------------------------------------------------------------------------------------
def _tiou_elementwise(a_start, a_end, b_start, b_end):
    """tIoU of broadcast segment pairs, with the official sequence of float operations.

    ``a`` plays the role of the official "candidate", ``b`` the "target"; the union is
    ``(a_end - a_start) + (b_end - b_start) - inter`` (addition commutes exactly in IEEE, so
    the roles only matter for readability).
    """
    inter = np.clip(np.minimum(b_end, a_end) - np.maximum(b_start, a_start), 0, None)
    union = (a_end - a_start) + (b_end - b_start) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def segment_tiou(target_segments, candidate_segments) -> np.ndarray:
    """Temporal IoU between every candidate and every target segment.

    Parameters
    ----------
    target_segments : array-like, shape [M, 2] (or [2])
        ``[start, end]`` rows.
    candidate_segments : array-like, shape [N, 2] (or [2])

    Returns
    -------
    np.ndarray, shape [N, M] (candidates × targets, the layout of the official
    ``wrapper_segment_iou``), float64. ``tiou[n, m] = |c_n ∩ t_m| / |c_n ∪ t_m|``; 0 for
    disjoint segments, NaN for two zero-length segments at the same instant.
    """
    t = np.asarray(target_segments, dtype=np.float64)
    c = np.asarray(candidate_segments, dtype=np.float64)
    if t.ndim == 1:
        t = t.reshape(1, -1)
    if c.ndim == 1:
        c = c.reshape(1, -1)
    if t.ndim != 2 or t.shape[1] != 2 or c.ndim != 2 or c.shape[1] != 2:
        raise ValueError(
            f"segment_tiou expects [M, 2] and [N, 2] arrays, got {t.shape} and {c.shape}"
        )
    return _tiou_elementwise(c[:, None, 0], c[:, None, 1], t[None, :, 0], t[None, :, 1])


# --------------------------------------------------------------------------------------------
# Reading (through shared.formats.activitynet), keeping the official dtype and order rules
# --------------------------------------------------------------------------------------------
class _GroundTruth:
    """Subset ground truth as flat arrays, instances grouped by video (file order)."""

    def __init__(self, video_ids, video, start, end, label, classes, n_subset_videos):
        self.video_ids = video_ids          # list[str], videos with >= 1 segment
        self.video_index = {v: i for i, v in enumerate(video_ids)}
        self.video = video                  # int array [n_gt]
        self.start = start
        self.end = end
        self.label = label                  # int array [n_gt]
        self.classes = classes              # list[str], order of first appearance
        self.n_subset_videos = n_subset_videos


def _parse_ground_truth(src: PathOrDict, subset: str, exclude: frozenset) -> _GroundTruth:
    """The ``subset`` videos with at least one annotation, in file order; classes numbered in
    order of first appearance (the official ``activity_index``). Segments are not required to
    be ordered (the official code does not check)."""
    gt = load_ground_truth(src, ordered_segments=False)
    offsets = np.concatenate([[0], np.cumsum(gt.counts)])
    video_ids, counts, rows = [], [], []
    n_subset = 0
    for i, vid in enumerate(gt.video_ids):
        if gt.subsets[i] != subset or vid in exclude:
            continue
        n_subset += 1
        if gt.counts[i]:
            video_ids.append(vid)
            counts.append(int(gt.counts[i]))
            rows.append(np.arange(offsets[i], offsets[i + 1]))
    idx = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    class_index: dict = {}
    labels = np.fromiter((class_index.setdefault(gt.labels[j], len(class_index)) for j in idx.tolist()),
                         dtype=np.int64, count=idx.size)
    seg = gt.segments[idx]
    return _GroundTruth(
        video_ids=video_ids,
        video=np.repeat(np.arange(len(video_ids)), counts).astype(np.int64),
        start=seg[:, 0].copy(),
        end=seg[:, 1].copy(),
        label=labels,
        classes=list(class_index),
        n_subset_videos=n_subset,
    )


class _Submission:
    """Submission as flat arrays in file order; rows of a video are contiguous."""

    def __init__(self, video_names, counts, start, end, score, labels):
        self.video_names = video_names      # list[str] (results keys, file order)
        self.counts = counts                # int array per results key
        self.start = start
        self.end = end
        self.score = score                  # int64 or float64
        self.labels = labels                # list[str] or None


def _parse_submission(src: PathOrDict, with_label: bool, exclude: frozenset) -> _Submission:
    """The submission's columns; scores typed as the official DataFrame types them (int64 when
    every score is an integer, else float64), so that numpy's unstable argsort breaks ties the
    same way. Segments are not required to be ordered (the official code does not check)."""
    sub = load_submission(src, labels="required" if with_label else "ignore", exclude=exclude,
                          ordered_segments=False)
    return _Submission(video_names=sub.video_ids, counts=sub.counts, start=sub.segments[:, 0].copy(),
                       end=sub.segments[:, 1].copy(),
                       score=sub.scores.astype(np.int64 if sub.scores.dtype.kind in "iu" else np.float64),
                       labels=sub.labels)


def parse_tiou_thresholds(spec) -> np.ndarray:
    """``"0.5:0.95:0.05"`` (inclusive range, built with ``np.linspace`` exactly like the official
    default), ``"0.3,0.5,0.7"``, a number or a sequence -> float64 array."""
    if spec is None:
        return DEFAULT_TIOU_THRESHOLDS.copy()
    if isinstance(spec, str):
        s = spec.strip()
        if ":" in s:
            parts = s.split(":")
            if len(parts) != 3:
                raise ValueError(f"tIoU range must be start:stop:step, got {spec!r}")
            start, stop, step = (float(p) for p in parts)
            if step <= 0 or stop < start:
                raise ValueError(f"bad tIoU range {spec!r}")
            n = int(round((stop - start) / step)) + 1
            return np.linspace(start, stop, n)
        return np.asarray([float(p) for p in s.split(",") if p.strip()], dtype=np.float64)
    arr = np.atleast_1d(np.asarray(spec, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("tiou_thresholds must be a non-empty 1-d sequence")
    return arr


# --------------------------------------------------------------------------------------------
# Proposals
# --------------------------------------------------------------------------------------------
def evaluate_proposals(
    ground_truth: PathOrDict,
    proposals: PathOrDict,
    subset: str = "validation",
    max_avg_nr_proposals: float | None = 100,
    tiou_thresholds=DEFAULT_TIOU_THRESHOLDS,
    exclude_videos: Iterable[str] | None = None,
) -> dict:
    """Official ActivityNet proposal evaluation (average recall vs average number of proposals).

    Returns a dict with ``"AR@k"`` (k in 1, 5, 10, 50, 100, 200, 500, 1000 up to
    ``max_avg_nr_proposals``), ``"AUC"`` (percent), ``"recall"`` [n_tiou, 100],
    ``"avg_recall"`` [100], ``"proposals_per_video"`` [100], ``"tiou_thresholds"``,
    ``"max_avg_nr_proposals"``, ``"n_videos"``, ``"n_gt"``, ``"n_proposals"`` (all loaded),
    ``"n_proposals_kept"``. See the module docstring for the protocol.
    """
    thr = parse_tiou_thresholds(tiou_thresholds)
    exclude = frozenset(exclude_videos or ())
    gt = _parse_ground_truth(ground_truth, subset, exclude)
    sub = _parse_submission(proposals, with_label=False, exclude=exclude)
    n_videos = len(gt.video_ids)
    n_gt = int(gt.video.size)
    if n_gt == 0:
        raise ValueError(f"ground-truth {describe(ground_truth)}: no annotated video in subset "
                         f"{subset!r}")
    n_total = int(sub.start.size)
    if not max_avg_nr_proposals:
        max_avg = float(n_total) / n_videos
    else:
        max_avg = max_avg_nr_proposals
    if max_avg <= 0:
        raise ValueError("max_avg_nr_proposals must be positive")

    # Per evaluated video: the kept proposals (indices into the submission arrays).
    gt_counts = np.bincount(gt.video, minlength=n_videos)
    kept_len = np.zeros(n_videos, dtype=np.int64)      # official score.shape[1] (after cut)
    has_props = np.zeros(n_videos, dtype=bool)
    kept_chunks = []
    if n_total > 0:
        ratio = max_avg * float(n_videos) / n_total
        offsets = np.cumsum(sub.counts) - sub.counts
        for vname, off, cnt in zip(sub.video_names, offsets.tolist(), sub.counts.tolist()):
            vi = gt.video_index.get(vname)
            if vi is None or cnt == 0:
                continue
            order = np.argsort(sub.score[off:off + cnt])[::-1]
            nr = min(int(cnt * ratio), cnt)
            has_props[vi] = True
            kept_len[vi] = nr
            kept_chunks.append((vi, off + order[:nr]))
    total_kept = int(kept_len.sum())

    # Flat kept-proposal arrays, in video order, each video's block in score order.
    kept_start_of_video = np.zeros(n_videos, dtype=np.int64)
    if kept_chunks:
        kept_chunks.sort(key=lambda x: x[0])
        kept_idx = np.concatenate([c[1] for c in kept_chunks])
        kept_start_of_video[1:] = np.cumsum(kept_len)[:-1]
    else:
        kept_idx = np.zeros(0, dtype=np.int64)
    kp_start = sub.start[kept_idx]
    kp_end = sub.end[kept_idx]

    # First position (in each video's kept list) of a proposal reaching each threshold.
    n_thr = thr.size
    big = np.iinfo(np.int64).max
    first_hit = np.full((n_gt, n_thr), big, dtype=np.int64)
    g_video = gt.video
    gt_first = np.cumsum(gt_counts) - gt_counts
    for v in np.flatnonzero(kept_len > 0).tolist():
        g0, g1 = gt_first[v], gt_first[v] + gt_counts[v]
        k0, k1 = kept_start_of_video[v], kept_start_of_video[v] + kept_len[v]
        tiou = _tiou_elementwise(gt.start[g0:g1, None], gt.end[g0:g1, None],
                                 kp_start[None, k0:k1], kp_end[None, k0:k1])   # [G, K]
        hit = tiou[:, :, None] >= thr[None, None, :]                          # [G, K, T]
        first_hit[g0:g1] = np.where(hit.any(axis=1), hit.argmax(axis=1), big)
    # Videos without any proposal: one column of zero tIoU (official), i.e. a "hit" at
    # position 0 for thresholds <= 0.
    missing = ~has_props[g_video]
    score_width = kept_len.copy()
    score_width[~has_props] = 1
    if missing.any():
        first_hit[np.ix_(missing, thr <= 0)] = 0

    if total_kept > 0:
        scale = max_avg * float(n_videos) / total_kept
        pcn = np.arange(1, _N_CURVE_POINTS + 1) / 100.0 * scale
    else:
        scale = None
        pcn = np.arange(1, _N_CURVE_POINTS + 1) / 100.0

    def recall_at(pcn_values: np.ndarray) -> np.ndarray:
        rec = np.zeros((n_thr, pcn_values.size))
        if scale is None:
            return rec
        nr = np.minimum((score_width[:, None] * pcn_values[None, :]).astype(np.int64),
                        score_width[:, None])                         # [n_videos, P]
        nr_g = nr[g_video]                                            # [n_gt, P]
        for t in range(n_thr):
            rec[t] = (first_hit[:, t:t + 1] < nr_g).sum(axis=0) / float(n_gt)
        return rec

    recall = recall_at(pcn)
    avg_recall = recall.mean(axis=0)
    if scale is not None:
        proposals_per_video = pcn * (float(total_kept) / n_videos)
        trapz = np.trapezoid if hasattr(np, "trapezoid") else np.trapz  # numpy 2 renamed it
        area = float(trapz(avg_recall, proposals_per_video))
        auc = 100.0 * area / proposals_per_video[-1]
    else:
        proposals_per_video = pcn * max_avg
        auc = 0.0

    out: dict[str, Any] = {}
    extra_k, extra_frac = [], []
    for k in AR_POINTS:
        if k > max_avg * (1 + 1e-12):
            continue
        j = k * _N_CURVE_POINTS / max_avg
        if abs(j - round(j)) < 1e-9 and 1 <= round(j) <= _N_CURVE_POINTS:
            out[f"AR@{k}"] = float(avg_recall[int(round(j)) - 1])
        else:
            extra_k.append(k)
            extra_frac.append(k / max_avg)
    if extra_k:
        ex = recall_at(np.asarray(extra_frac) * (scale if scale is not None else 1.0))
        for k, v in zip(extra_k, ex.mean(axis=0)):
            out[f"AR@{k}"] = float(v)
    out = {k: out[k] for k in sorted(out, key=lambda s: int(s[3:]))}
    out.update(
        AUC=float(auc),
        recall=recall,
        avg_recall=avg_recall,
        proposals_per_video=proposals_per_video,
        tiou_thresholds=thr,
        max_avg_nr_proposals=max_avg,
        n_videos=n_videos,
        n_gt=n_gt,
        n_proposals=n_total,
        n_proposals_kept=total_kept,
    )
    return out
