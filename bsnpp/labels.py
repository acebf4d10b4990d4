"""BSN++ labels: snippet rescaling to T bins and BMN's boundary and IoU-map targets.

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

Conventions (fixed for this repository; the model, ``bsnpp/postprocess.py`` and ``bsnpp/loss.py`` use them)
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
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["rescale_snippets", "boundary_anchors", "boundary_targets", "proposal_map_bounds", "valid_map_mask",
           "iou_map_targets", "make_targets", "normalized_segments"]


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


def boundary_anchors(T: int, anchors: str = "bmn") -> tuple[np.ndarray, np.ndarray]:
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


def boundary_targets(gt: np.ndarray, T: int, boundary_width: float | str = 3.0,
                     anchors: str = "bmn") -> tuple[np.ndarray, np.ndarray]:
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


def proposal_map_bounds(D: int, T: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised (start, end) of every map cell, each ``[D, T]``: cell ``[d, s]`` is
    ``[s / T, (s + d + 1) / T]`` (BMN's duration x start match map)."""
    d = np.arange(D, dtype=np.float64)[:, None]
    s = np.arange(T, dtype=np.float64)[None, :]
    return np.broadcast_to(s / T, (D, T)).copy(), (s + d + 1) / T


@functools.lru_cache(maxsize=16)
def valid_map_mask(D: int, T: int) -> np.ndarray:
    """bool ``[D, T]``: True where cell ``[d, s]``'s proposal ends inside the video,
    ``s + d + 1 <= T`` (proposals ending exactly at the video end included).

    The one definition of the map's valid cells: the targets, the model (its PRB and heads), the
    loss and the post-processing all read it. Computed once per (D, T) and shared read-only
    (torch users take ``torch.from_numpy(valid_map_mask(D, T))``).
    """
    d = np.arange(D)[:, None]
    s = np.arange(T)[None, :]
    mask = (s + d + 1) <= T
    mask.setflags(write=False)
    return mask


def iou_map_targets(gt: np.ndarray, T: int, D: int | None = None) -> np.ndarray:
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


def make_targets(gt: np.ndarray, T: int, D: int | None = None,
                 boundary_width: float | str = 3.0, anchors: str = "bmn"
                 ) -> dict[str, np.ndarray]:
    """``{"start": [T], "end": [T], "iou_map": [D, T]}`` (float32) for normalised ``gt [G, 2]``."""
    start, end = boundary_targets(gt, T, boundary_width, anchors)
    return {"start": start, "end": end, "iou_map": iou_map_targets(gt, T, D)}


def normalized_segments(record, offset_seconds: float = 0.0,
                        window_seconds: float | None = None) -> np.ndarray:
    """GT segments of ``record`` (a ``bsnpp.records.VideoRecord``) in normalised time, float64 ``[G, 2]``.

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
