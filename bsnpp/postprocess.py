"""BSN++ / BMN post-processing, vectorised: candidates -> Gaussian Soft-NMS -> ActivityNet JSON.

BSN++ has no public code; its post-processing is BMN's (JJBOY/BMN-Boundary-Matching-Network,
``main.py::BMN_inference`` + ``post_processing.py``), which itself is BSN's
(wzmsltw/BSN-boundary-sensitive-network, ``Post_processing.py``) with other Soft-NMS constants.
This module reproduces those steps exactly, but without the Python loops over ~5,000 candidates.

Pipeline per video (the functions below, in order):

1. :func:`generate_candidates` -- BMN's ``BMN_inference`` inner double loop: keep boundary
   positions that are probability peaks or above ``0.5 * max``, pair them into every valid
   (start, duration) cell of the confidence maps, score each candidate.
2. :func:`soft_nms` -- BMN's ``post_processing.Soft_NMS`` (Gaussian decay with a
   width-adaptive IoU threshold) followed by ``video_post_process``'s re-sort and top-K cut
   (:func:`soft_nms_torch`: the same loop on a padded batch of videos, any device).
3. :func:`to_seconds` -- ``video_post_process``'s scaling to seconds; :func:`proposals_to_json`
   the ActivityNet proposal submission (``shared.formats.activitynet`` writes it).

:func:`postprocess_video` chains the three for one video; :func:`postprocess_many` does a whole
split (optionally with a process pool, as BMN does with ``post_process_thread`` processes; the
vectorised code makes ``workers=1`` fast enough: a few ms per video).

Conventions (fixed for this repository)
---------------------------------------
Per video the network outputs ``start`` [T], ``end`` [T] boundary probabilities and the
confidence maps ``cls`` [D, T], ``reg`` [D, T] (D <= T, the maximal duration in snippets). Map
cell ``[d, s]`` is the proposal ``[s / T, (s + d + 1) / T]`` in normalised time (BMN's
duration x start layout). A cell is valid when ``s + d + 1 <= T``.

**Fix of BMN's end-of-video quirk.** BMN keeps a cell only when ``end_index = s + d + 1 < T``
and reads ``end[end_index]``: a proposal can never end at the video end (normalised 1.0), so
every action that runs to the last snippet is cut one snippet short. We keep ``s + d + 1 == T``
as well and read the end probability of the boundary at normalised position ``e / T`` as
``end[min(e, T - 1)]`` (the last snippet's end probability stands for the video end); the
start probability of ``s / T`` is ``start[s]``. Everything else (which positions pass the
boundary filter, the candidate order, the score) is BMN's.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from bsnpp.labels import valid_map_mask
from shared.formats.activitynet import proposal_submission, write_submission

__all__ = [
    "CANDIDATE_COLUMNS",
    "BMN_SOFT_NMS",
    "BSN_SOFT_NMS",
    "boundary_keep",
    "generate_candidates",
    "soft_nms",
    "soft_nms_torch",
    "to_seconds",
    "proposals_to_json",
    "postprocess_video",
    "postprocess_many",
]

#: Columns of :func:`generate_candidates`' output. The first three feed :func:`soft_nms`.
CANDIDATE_COLUMNS = ("xmin", "xmax", "score", "start_score", "end_score", "cls_score", "reg_score")

#: BMN's Soft-NMS constants (JJBOY ``opts.py``: soft_nms_alpha 0.4, low 0.5, high 0.9, top_K 100).
BMN_SOFT_NMS = {"alpha": 0.4, "low": 0.5, "high": 0.9, "top_k": 100}
#: BSN's constants (``Post_processing.py``: ``exp(-iou^2 / 0.75)`` when ``iou > 0.65 + 0.25 * width``).
BSN_SOFT_NMS = {"alpha": 0.75, "low": 0.65, "high": 0.9, "top_k": 100}

_CANDIDATE_KEYS = ("score_mode", "boundary_filter", "peak_threshold")
_NMS_KEYS = ("alpha", "low", "high", "top_k", "max_keep", "max_candidates", "tie_order")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _as_f64(x: Any) -> np.ndarray:
    """numpy or torch (any device, with or without grad) -> float64 numpy array."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _sort_desc(scores: np.ndarray, tie_order: str = "pandas") -> np.ndarray:
    """Indices sorting ``scores`` descending.

    ``"pandas"`` reproduces ``DataFrame.sort_values(by="score", ascending=False)`` (what BMN
    calls; pandas ``nargsort``: reverse, numpy *quicksort* argsort, reverse), so tied scores come
    out in exactly BMN's order on the same numpy build. numpy's quicksort is not stable and its
    tie order may differ between CPUs/numpy versions; ``"stable"`` gives a portable order
    (ties keep their input order) at the price of differing from BMN on exact ties.
    """
    n = scores.shape[0]
    if tie_order == "stable":
        return np.argsort(-scores, kind="stable")
    if tie_order != "pandas":
        raise ValueError(f"tie_order must be 'pandas' or 'stable', got {tie_order!r}")
    rev_idx = np.arange(n)[::-1]
    return rev_idx[scores[::-1].argsort(kind="quicksort")][::-1]


# --------------------------------------------------------------------------------------------
# 1. candidate generation (BMN_inference's double loop)
# --------------------------------------------------------------------------------------------


def boundary_keep(prob: np.ndarray, kind: str, peak_threshold: float = 0.5) -> np.ndarray:
    """BMN's boundary filter (``start_bins`` / ``end_bins``) as a boolean mask over [T].

    BMN's rule, exactly: an interior position ``1 <= i <= T - 2`` is kept when it is a strict
    local maximum (``p[i] > p[i-1] and p[i] > p[i+1]``) or when ``p[i] > 0.5 * max(p)``
    (``peak_threshold`` = 0.5). Position 0 is always a start and never an end; position T - 1 is
    always an end and never a start (BMN's loop never visits it for starts). Because the end
    boundary of the video end (``e = T``) uses ``end[T - 1]`` here, it is always kept too.
    """
    p = np.asarray(prob, dtype=np.float64)
    T = p.shape[0]
    keep = np.zeros(T, dtype=bool)
    if T > 2:
        mid = p[1:-1]
        keep[1:-1] = ((mid > p[2:]) & (mid > p[:-2])) | (mid > peak_threshold * p.max())
    if kind == "start":
        keep[0] = True
    elif kind == "end":
        keep[-1] = True
    else:
        raise ValueError(f"kind must be 'start' or 'end', got {kind!r}")
    return keep


def generate_candidates(
    start: Any,
    end: Any,
    cls: Any,
    reg: Any,
    *,
    score_mode: str = "product",
    boundary_filter: str = "bmn",
    peak_threshold: float = 0.5,
) -> np.ndarray:
    """Candidate proposals of one video from its boundary probabilities and confidence maps.

    BMN step: the proposal-construction double loop of ``BMN_inference`` (``main.py``), done as
    array operations. Inputs are numpy arrays or torch tensors (any device); all arithmetic is
    float64.

    Args:
        start, end: [T] starting / ending probabilities.
        cls, reg: [D, T] classification / regression confidence maps (``cls`` is BMN's
            ``confidence_map[:, 1]``, ``reg`` its ``confidence_map[:, 0]``); cell ``[d, s]`` is
            the proposal ``[s/T, (s+d+1)/T]``.
        score_mode: ``"product"`` (default; BMN's *code*, and BSN++'s reimplementation):
            ``start * end * cls * reg``. ``"sqrt"`` (the BMN *paper*, Sec. 3.5):
            ``start * end * sqrt(cls * reg)``. The ranking differs between the two, so the
            choice changes AR@AN; we default to the code, whose numbers are the ones reproduced.
        boundary_filter: ``"bmn"`` keeps only cells whose start and end pass
            :func:`boundary_keep` (peak or > ``peak_threshold * max``); ``"none"`` keeps every
            valid cell (T = 100, D = 100: 5,050 candidates).
        peak_threshold: the 0.5 of BMN's ``> 0.5 * max`` rule.

    Returns:
        float64 array [K, 7] with columns :data:`CANDIDATE_COLUMNS` = (xmin, xmax, score,
        start_score, end_score, cls_score, reg_score), in BMN's order (duration-major, then
        start). ``[:, :3]`` is what :func:`soft_nms` takes. K may be 0 (shape [0, 7]).

    Validity differs from BMN in one respect (see the module docstring): cells with
    ``s + d + 1 == T`` (proposals ending at the video end) are kept, scored with ``end[T-1]``.
    Precision: BMN multiplies the network's float32 values in float32 (then stores float64);
    we multiply in float64, so scores of float32 inputs differ from BMN's by ~1e-7 relative
    (float64 inputs give BMN's loop bit for bit, as the tests check).
    """
    ps, pe, mc, mr = _as_f64(start), _as_f64(end), _as_f64(cls), _as_f64(reg)
    if ps.ndim != 1 or pe.shape != ps.shape:
        raise ValueError(f"start/end must both be [T], got {ps.shape} and {pe.shape}")
    T = ps.shape[0]
    if mc.ndim != 2 or mc.shape[1] != T or mr.shape != mc.shape or mc.shape[0] > T:
        raise ValueError(f"cls/reg must both be [D, T] with D <= T={T}, got {mc.shape}, {mr.shape}")
    if score_mode not in ("product", "sqrt"):
        raise ValueError(f"score_mode must be 'product' or 'sqrt', got {score_mode!r}")
    D = mc.shape[0]
    if T == 0 or D == 0:
        return np.zeros((0, len(CANDIDATE_COLUMNS)))

    d = np.arange(D)[:, None]
    s = np.arange(T)[None, :]
    e = s + d + 1  # [D, T] end boundary index; normalised end = e / T
    valid = valid_map_mask(D, T).copy()
    if boundary_filter == "bmn":
        skeep = boundary_keep(ps, "start", peak_threshold)
        ekeep = boundary_keep(pe, "end", peak_threshold)
        valid &= skeep[s] & ekeep[np.minimum(e, T - 1)]
    elif boundary_filter != "none":
        raise ValueError(f"boundary_filter must be 'bmn' or 'none', got {boundary_filter!r}")

    dd, ss = np.nonzero(valid)  # row-major = BMN's loop order (duration outer, start inner)
    ee = ss + dd + 1
    xs = ps[ss]
    xe = pe[np.minimum(ee, T - 1)]
    c = mc[dd, ss]
    r = mr[dd, ss]
    if score_mode == "product":
        score = xs * xe * c * r  # same left-to-right order as BMN's expression
    else:
        score = xs * xe * np.sqrt(c * r)
    return np.stack([ss / T, ee / T, score, xs, xe, c, r], axis=1)


# --------------------------------------------------------------------------------------------
# 2. Gaussian Soft-NMS (post_processing.Soft_NMS + video_post_process's top-K cut)
# --------------------------------------------------------------------------------------------


def soft_nms(
    proposals: Any,
    alpha: float = 0.4,
    low: float = 0.5,
    high: float = 0.9,
    top_k: int = 100,
    max_keep: int | None = None,
    max_candidates: int | None = None,
    tie_order: str = "pandas",
) -> np.ndarray:
    """Gaussian Soft-NMS with BMN's width-adaptive threshold, then BMN's final top-K cut.

    BMN step: ``post_processing.Soft_NMS`` followed by the re-sort and ``top_K`` cut of
    ``video_post_process``. Semantics reproduced exactly:

    * sort candidates by score, descending (pandas' order for ties, see ``tie_order``);
    * while candidates remain and fewer than ``max_keep`` (BMN: ``len(rscore) <= top_K``, i.e.
      ``top_k + 1`` = 101) are kept: select the first maximal current score; every *other*
      remaining proposal whose IoU with it exceeds ``low + (high - low) * width_selected`` has its
      score multiplied by ``exp(-iou**2 / alpha)``; move the selected one (with its current,
      undecayed-in-its-own-step score) to the output;
    * re-sort the kept proposals by score (descending) and return the first ``top_k``.

    BMN: ``alpha=0.4, low=0.5, high=0.9`` (the defaults, :data:`BMN_SOFT_NMS`). BSN:
    ``alpha=0.75, low=0.65, high=0.9`` (:data:`BSN_SOFT_NMS`). BSN's loop also differs in two
    details that are *not* reproduced: it stops when one candidate is left (``len(tscore) > 1``,
    so the last one is dropped; matters only with < 102 candidates) and computes the IoU as
    ``intersection / hull`` (same value up to rounding).

    Vectorised: each selection step is a handful of O(K) numpy operations on the whole array
    (selected/removed entries are masked, scores of removed ones set to -inf), instead of BMN's
    Python loop over all remaining pairs; the float operations are BMN's, in BMN's order, so
    the output is bit-identical to BMN's loop.

    Args:
        proposals: [K, >=3] (xmin, xmax, score) in normalised time; extra columns are ignored.
            numpy or torch.
        alpha: Gaussian decay ``exp(-iou^2 / alpha)``.
        low, high: decay only when ``iou > low + (high - low) * (xmax_sel - xmin_sel)``.
        top_k: size of the final cut (BMN ``post_process_top_K`` = 100).
        max_keep: proposals selected by the loop; ``None`` = ``top_k + 1`` (BMN's off-by-one).
        max_candidates: optional cap on the candidates entering the loop (the highest-scored
            ones). ``None`` (default, BMN) = no cap. A cap changes results only when many
            high-scored candidates are suppressed, but it is not BMN.
        tie_order: ``"pandas"`` (BMN-exact on ties) or ``"stable"``, see :func:`_sort_desc`.

    Returns:
        float64 array [min(top_k, kept), 3]: (xmin, xmax, score), score descending.

    Raises:
        ValueError on NaN scores (BMN would silently select NaN-scored proposals first).
    """
    p = _as_f64(proposals)
    if p.ndim != 2 or (p.shape[0] and p.shape[1] < 3):
        raise ValueError(f"proposals must be [K, >=3] (xmin, xmax, score), got {p.shape}")
    if p.shape[0] == 0:
        return np.zeros((0, 3))
    if np.isnan(p[:, 2]).any():
        raise ValueError("NaN proposal scores")
    if max_keep is None:
        max_keep = top_k + 1

    order = _sort_desc(p[:, 2], tie_order)
    if max_candidates is not None:
        order = order[: max(int(max_candidates), 0)]
    xmin = np.ascontiguousarray(p[order, 0])
    xmax = np.ascontiguousarray(p[order, 1])
    score = np.ascontiguousarray(p[order, 2])
    n = score.shape[0]
    alive = np.ones(n, dtype=bool)
    cur = score.copy()  # current scores; removed entries are -inf so argmax skips them
    kept_idx: list[int] = []
    kept_score: list[float] = []

    inter = np.empty(n)
    tmp = np.empty(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        while len(kept_idx) < n and len(kept_idx) < max_keep:
            i = int(np.argmax(cur))  # first maximum in sorted order == BMN's np.argmax(list)
            smin, smax = xmin[i], xmax[i]
            width = smax - smin
            kept_idx.append(i)
            kept_score.append(cur[i])
            alive[i] = False
            cur[i] = -np.inf
            # iou_with_anchors(smin, smax, width, xmin, xmax), BMN's float sequence:
            np.minimum(smax, xmax, out=inter)
            np.subtract(inter, np.maximum(smin, xmin, out=tmp), out=inter)
            np.maximum(inter, 0.0, out=inter)  # intersection
            np.subtract(width, inter, out=tmp)
            tmp += xmax
            tmp -= xmin  # union = width - inter + xmax - xmin
            iou = inter / tmp
            thr = low + (high - low) * width
            hit = np.flatnonzero((iou > thr) & alive)
            if hit.size:
                cur[hit] = cur[hit] * np.exp(-np.square(iou[hit]) / alpha)

    kept = np.asarray(kept_idx, dtype=np.intp)
    out = np.stack([xmin[kept], xmax[kept], np.asarray(kept_score, dtype=np.float64)], axis=1)
    out = out[_sort_desc(out[:, 2], tie_order)]
    return out[:top_k]


def soft_nms_torch(
    proposals: Any,
    counts: Any = None,
    alpha: float = 0.4,
    low: float = 0.5,
    high: float = 0.9,
    top_k: int = 100,
    max_keep: int | None = None,
):
    """Batched torch variant of :func:`soft_nms`: many videos at once, on any device.

    Same loop as :func:`soft_nms` (BMN's Soft-NMS + top-K cut) run on a padded batch: each of
    the ``max_keep`` (default ``top_k + 1``) steps is a few [B, K] tensor operations, so a whole
    split (B = 4,728 videos, K = 5,050) is ~100 steps of large kernels on a GPU.

    Differences from :func:`soft_nms`: ties are ordered stably (input order; like
    ``tie_order="stable"``), not in pandas' quicksort order, and ``torch.exp`` may differ from
    ``numpy.exp`` in the last bit, so scores agree to ~1e-15 relative rather than bit-exactly
    (the IoU/threshold arithmetic is the same IEEE sequence). Computed in float64.

    Args:
        proposals: [B, K, >=3] (xmin, xmax, score), rows beyond ``counts[b]`` are padding.
        counts: [B] valid rows per video (None: all K).

    Returns:
        (out [B, top_k, 3] float64, n [B] int64): video b's result is ``out[b, :n[b]]``; the
        rest is zero.
    """
    import torch

    p = torch.as_tensor(proposals)
    if p.ndim != 3 or p.shape[-1] < 3:
        raise ValueError(f"proposals must be [B, K, >=3], got {tuple(p.shape)}")
    p = p[..., :3].to(torch.float64)
    B, K, _ = p.shape
    dev = p.device
    if counts is None:
        counts = torch.full((B,), K, dtype=torch.long, device=dev)
    counts = torch.as_tensor(counts, dtype=torch.long, device=dev)
    if max_keep is None:
        max_keep = top_k + 1
    if torch.isnan(p[..., 2]).any():
        raise ValueError("NaN proposal scores")

    neg_inf = torch.tensor(float("-inf"), dtype=torch.float64, device=dev)
    valid = torch.arange(K, device=dev)[None, :] < counts[:, None]
    order = torch.sort(torch.where(valid, p[..., 2], neg_inf), dim=1, descending=True, stable=True)[1]
    xmin = p[..., 0].gather(1, order)
    xmax = p[..., 1].gather(1, order)
    alive = valid.gather(1, order)
    cur = torch.where(alive, p[..., 2].gather(1, order), neg_inf)
    n_keep = torch.clamp(counts, max=max_keep)
    steps = int(n_keep.max().item()) if B else 0
    kept = torch.zeros(B, max(steps, 1), 3, dtype=torch.float64, device=dev)
    rows = torch.arange(B, device=dev)
    for step in range(steps):
        active = step < n_keep  # [B]
        i = torch.argmax(cur, dim=1)  # first maximum, like np.argmax
        smin, smax, sel = xmin[rows, i], xmax[rows, i], cur[rows, i]
        kept[:, step, 0], kept[:, step, 1], kept[:, step, 2] = smin, smax, sel
        alive[rows, i] = False
        cur[rows, i] = neg_inf
        width = (smax - smin)[:, None]
        inter = (torch.minimum(smax[:, None], xmax) - torch.maximum(smin[:, None], xmin)).clamp_min(0.0)
        union = width - inter + xmax - xmin
        iou = inter / union
        thr = low + (high - low) * width
        hit = (iou > thr) & alive & active[:, None]
        cur = torch.where(hit, cur * torch.exp(-torch.square(iou) / alpha), cur)
    kept = kept[:, :steps]
    kvalid = torch.arange(steps, device=dev)[None, :] < n_keep[:, None]
    ko = torch.sort(torch.where(kvalid, kept[..., 2], neg_inf), dim=1, descending=True, stable=True)[1]
    kept = kept.gather(1, ko[..., None].expand(-1, -1, 3))
    n_out = torch.clamp(n_keep, max=top_k)
    out = torch.zeros(B, top_k, 3, dtype=torch.float64, device=dev)
    m = min(top_k, steps)
    out[:, :m] = kept[:, :m]
    out[torch.arange(top_k, device=dev)[None, :] >= n_out[:, None]] = 0.0
    return out, n_out


# --------------------------------------------------------------------------------------------
# 3. output
# --------------------------------------------------------------------------------------------


def to_seconds(props: np.ndarray, duration: float) -> np.ndarray:
    """[K, >=3] normalised (xmin, xmax, score) -> [K, 3] (start s, end s, score).

    BMN: ``[max(0, xmin) * duration, min(1, xmax) * duration]``; we also clip the product to
    [0, duration] (a no-op for finite inputs, kept as a guarantee).
    """
    p = _as_f64(props)
    if p.size == 0:
        return np.zeros((0, 3))
    if p.ndim != 2 or p.shape[1] < 3:
        raise ValueError(f"proposals must be [K, >=3] (xmin, xmax, score), got {p.shape}")
    dur = float(duration)
    seg = np.stack([np.maximum(0.0, p[:, 0]), np.minimum(1.0, p[:, 1])], axis=1) * dur
    return np.column_stack([np.clip(seg, 0.0, dur), p[:, 2]])


def proposals_to_json(
    video_results: Mapping[str, Any],
    durations: Mapping[str, float],
    path: str | os.PathLike | None = None,
) -> dict:
    """ActivityNet proposal submission ``{"version": "VERSION 1.3", "results": {vid: [{"segment":
    [s, e], "score"}]}, "external_data": {}}`` (BMN's ``BMN_post_processing`` output), built and
    written by ``shared.formats.activitynet``.

    Args:
        video_results: video id -> [K, >=3] normalised (xmin, xmax, score) (e.g. the output of
            :func:`soft_nms`), written in the given order. Keys are written unchanged: BMN
            strips the ``v_`` of its ``v_<youtube id>`` names (``video_name[2:]``); do it before
            calling if your ids carry it and the ground truth does not.
        durations: video id -> duration in seconds used for the scaling (:func:`to_seconds`).
            BMN uses the duration covered by the features, ``duration_frame // 16 * 16 /
            duration_frame * duration_second``, not the raw ``duration_second``; pass whichever
            you mean.
        path: if given, the JSON is written there (atomically, parent folders created).

    Returns:
        the submission dict (plain Python floats, JSON-serialisable).
    """
    results = {}
    for vid, props in video_results.items():
        if vid not in durations:
            raise KeyError(f"no duration for video {vid!r}")
        results[vid] = to_seconds(props, durations[vid])
    sub = proposal_submission(results)
    if path is not None:
        write_submission(sub, path)
    return sub


def _split_cfg(cfg: Mapping[str, Any]) -> tuple[dict, dict]:
    unknown = set(cfg) - set(_CANDIDATE_KEYS) - set(_NMS_KEYS)
    if unknown:
        raise TypeError(f"unknown post-processing options: {sorted(unknown)}")
    cand = {k: cfg[k] for k in _CANDIDATE_KEYS if k in cfg}
    nms = {k: cfg[k] for k in _NMS_KEYS if k in cfg}
    return cand, nms


def _video_props(start: Any, end: Any, cls: Any, reg: Any, cfg: Mapping[str, Any]) -> np.ndarray:
    cand_cfg, nms_cfg = _split_cfg(cfg)
    cand = generate_candidates(start, end, cls, reg, **cand_cfg)
    return soft_nms(cand[:, :3], **nms_cfg)


def postprocess_video(start: Any, end: Any, cls: Any, reg: Any, duration: float, **cfg: Any) -> list[dict]:
    """One video: :func:`generate_candidates` -> :func:`soft_nms` -> seconds.

    ``cfg`` takes the keyword arguments of both functions (``score_mode``, ``boundary_filter``,
    ``peak_threshold``, ``alpha``, ``low``, ``high``, ``top_k``, ``max_keep``,
    ``max_candidates``, ``tie_order``); defaults are BMN's. Returns the video's
    ``[{"segment": [s, e], "score"}]`` list in seconds (empty when there are no candidates).
    """
    return proposal_submission({"v": to_seconds(_video_props(start, end, cls, reg, cfg), duration)})["results"]["v"]


def _unpack(out: Any) -> tuple:
    if isinstance(out, Mapping):
        return tuple(_as_f64(out[k]) for k in ("start", "end", "cls", "reg"))
    start, end, cls, reg = out
    return _as_f64(start), _as_f64(end), _as_f64(cls), _as_f64(reg)


def _worker(args: tuple) -> tuple[str, np.ndarray]:
    vid, (start, end, cls, reg), cfg = args
    return vid, _video_props(start, end, cls, reg, cfg)


def postprocess_many(
    outputs: Mapping[str, Any],
    durations: Mapping[str, float],
    *,
    workers: int = 1,
    path: str | os.PathLike | None = None,
    **cfg: Any,
) -> dict:
    """All videos of a split -> the ActivityNet submission dict (and file if ``path``).

    BMN step: ``BMN_post_processing`` (which forks ``post_process_thread`` processes, 8-32, to
    get through its Python loops). Here ``workers=1`` runs in-process and is already fast; with
    ``workers > 1`` a ``multiprocessing.Pool`` of that size shares the videos.

    Args:
        outputs: video id -> ``{"start", "end", "cls", "reg"}`` mapping or a
            ``(start, end, cls, reg)`` tuple (numpy or torch; converted to numpy up front).
        durations: video id -> seconds (see :func:`proposals_to_json`).
        workers: processes; 1 = none.
        path: optional JSON output path.
        **cfg: as in :func:`postprocess_video`.
    """
    _split_cfg(cfg)  # validate early, before starting processes
    jobs: Iterable[tuple] = [(vid, _unpack(o), cfg) for vid, o in outputs.items()]
    if workers > 1 and len(outputs) > 1:
        with mp.get_context().Pool(min(workers, len(outputs))) as pool:
            chunk = max(1, len(outputs) // (4 * workers))
            res = dict(pool.imap(_worker, jobs, chunksize=chunk))
    else:
        res = dict(map(_worker, jobs))
    ordered = {vid: res[vid] for vid in outputs}
    return proposals_to_json(ordered, durations, path=path)
