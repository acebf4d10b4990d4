"""Person re-identification ranking metrics: CMC, mAP and mINP under the Market-1501 protocol.

Protocol (torchreid ``torchreid/metrics/rank.py::eval_market1501``, Python path, KaiyangZhou/
deep-person-reid @ f8cd150; mINP as in fast-reid ``fastreid/evaluation/rank.py``):

* ``distmat[i, j]`` is the distance between query ``i`` and gallery item ``j``; smaller = closer.
  Each query row is ranked with ``np.argsort(row)`` (numpy's default, non-stable sort), exactly the
  call torchreid makes.
* Gallery items with the same pid **and** the same camid as the query are removed ("junk").
* A query left without any true match (same pid, other camera) is skipped; ``num_valid_query``
  counts the rest. No valid query at all raises ``ValueError`` (torchreid asserts).
* CMC@k (1-based k): fraction of valid queries whose first true match is within the top k of the
  remaining ranking.
* AP = mean over the true matches of precision at their rank; mAP = mean AP over valid queries.
* INP = (#true matches) / (rank of the hardest true match); mINP = mean INP (fast-reid).

Numerical fidelity (checked against vectors produced by the official code):

* ``cmc`` is float32, like torchreid's (``float32 counts / num_valid``), so values such as
  0.8333333134651184 are reproduced bit for bit.
* Per-query AP is summed with numpy's pairwise ``sum`` over the row of remaining gallery items
  exactly as torchreid does, so AP/mAP are bit-identical, not merely close.
* Ties in distance: ranks come from the same ``np.argsort`` call as torchreid (default kind,
  an unstable introsort / SIMD sort), applied row by row, so tied distances are ordered exactly
  as the official code orders them *on the same numpy build and CPU*. That order is
  implementation-defined; pass ``sort_kind="stable"`` for a platform-independent order (ties by
  gallery index), which may then differ from torchreid where ties straddle a true match.

Differences from torchreid, on purpose:

* torchreid's Python path crashes (ragged array) when ``max_rank`` exceeds the number of gallery
  items left to some query after junk removal, and silently shortens the curve to ``num_gallery``
  when ``max_rank > num_gallery``. Here ``cmc`` always has length ``max_rank``; a valid query has
  at least one match among its remaining items, so its CMC is 1 at every rank at or beyond its
  remaining gallery size ("once matched it stays 1").
* Work is vectorised over chunks of query rows (``chunk_size`` rows argsorted at once), so memory
  stays bounded (a few ``chunk_size x num_gallery`` arrays) even for 20,000 x 20,000 problems.
* ``distmat`` may be a numpy array or a torch tensor (any device; it is moved to the CPU with its
  dtype kept, bfloat16 becomes float32).
"""
from __future__ import annotations

import sys

import numpy as np

__all__ = ["evaluate_rank"]

# Elements per chunk (rows x gallery) when chunk_size is not given: ~4M -> each int64 [chunk, G]
# temporary is ~32 MB.
_CHUNK_ELEMS = 1 << 22


def _to_numpy(x) -> np.ndarray:
    # torch is imported only if the caller already did (a tensor implies it): keeps numpy-only
    # callers from paying torch's import time.
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        x = x.detach()
        if x.dtype == torch.bfloat16:
            x = x.float()
        return x.cpu().numpy()
    return np.asarray(x)


def evaluate_rank(
    distmat,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    max_rank: int = 50,
    chunk_size: int | None = None,
    sort_kind: str | None = None,
) -> dict:
    """Market-1501 CMC / mAP / mINP of a query x gallery distance matrix.

    Args:
        distmat: [num_query, num_gallery] distances (numpy array or torch tensor), smaller = closer.
        q_pids, g_pids, q_camids, g_camids: 1-D identity / camera labels (any integer ids,
            need not be contiguous).
        max_rank: length of the returned CMC curve (>= 1); may exceed the gallery size.
        chunk_size: query rows processed at once; default keeps ``chunk_size * num_gallery``
            around 4M elements.
        sort_kind: ``None`` (numpy's default, what torchreid uses; see the module docstring on
            ties) or any ``np.argsort`` kind, e.g. ``"stable"``.

    Returns:
        dict with ``cmc`` (float32 array of length ``max_rank``; ``cmc[k-1]`` = rank-k accuracy),
        ``mAP``, ``mINP`` (floats), ``num_valid_query`` (int), ``AP`` and ``INP`` (float64 arrays
        over the valid queries, in query order) and ``valid_query_index`` (their row indices).
    """
    distmat = _to_numpy(distmat)
    q_pids, g_pids = _to_numpy(q_pids), _to_numpy(g_pids)
    q_camids, g_camids = _to_numpy(q_camids), _to_numpy(g_camids)
    if distmat.ndim != 2:
        raise ValueError(f"distmat must be 2-D [num_query, num_gallery], got shape {distmat.shape}")
    num_q, num_g = distmat.shape
    for name, arr, n in (("q_pids", q_pids, num_q), ("q_camids", q_camids, num_q),
                         ("g_pids", g_pids, num_g), ("g_camids", g_camids, num_g)):
        if arr.ndim != 1 or arr.shape[0] != n:
            raise ValueError(f"{name} must be 1-D with {n} entries to match distmat "
                             f"{distmat.shape}, got shape {arr.shape}")
    if int(max_rank) < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    max_rank = int(max_rank)
    if num_q == 0 or num_g == 0:
        raise ValueError(f"empty problem: distmat shape {distmat.shape}")
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_ELEMS // num_g)
    chunk_size = max(1, int(chunk_size))
    if not (np.issubdtype(distmat.dtype, np.floating) or np.issubdtype(distmat.dtype, np.integer)):
        raise TypeError(f"distmat must hold real numbers, got dtype {distmat.dtype}")
    argsort_kw = {} if sort_kind is None else {"kind": sort_kind}

    first_rank = np.full(num_q, -1, dtype=np.int64)  # 0-based rank of first match, -1 = invalid
    ap = np.full(num_q, np.nan, dtype=np.float64)
    inp = np.full(num_q, np.nan, dtype=np.float64)

    for start in range(0, num_q, chunk_size):
        stop = min(num_q, start + chunk_size)
        order = np.argsort(distmat[start:stop], axis=1, **argsort_kw)
        match = g_pids[order] == q_pids[start:stop, None]
        same_cam = g_camids[order] == q_camids[start:stop, None]
        del order
        junk = match & same_cam
        raw = match & ~same_cam  # true matches among the kept items, in distance order
        del match, same_cam
        # 0-based rank of every item among the kept ones (valid where not junk)
        kept_rank = np.cumsum(~junk, axis=1, dtype=np.int32)
        kept_rank -= 1
        n_keep = kept_rank[:, -1].astype(np.int64) + 1
        del junk
        rows, cols = np.nonzero(raw)  # row-major: columns ascending within each row
        del raw
        if rows.size == 0:
            continue
        ranks = kept_rank[rows, cols].astype(np.int64)
        del kept_rank, cols
        num_rel = np.bincount(rows, minlength=stop - start)
        row_start = np.cumsum(num_rel) - num_rel
        hit_no = np.arange(rows.size, dtype=np.int64) - row_start[rows] + 1  # cumsum of matches
        valid_rows = np.flatnonzero(num_rel)
        first_rank[start + valid_rows] = ranks[row_start[valid_rows]]
        last = row_start[valid_rows] + num_rel[valid_rows] - 1
        # fast-reid: cmc[max_pos_idx] / (max_pos_idx + 1.0)
        inp[start + valid_rows] = num_rel[valid_rows] / (ranks[last] + 1.0)
        # torchreid: tmp = cumsum / (i + 1.) * raw_cmc; AP = tmp.sum() / num_rel, the sum being
        # numpy's pairwise sum over the n_keep kept items. Rebuild those rows (zeros elsewhere)
        # and sum rows of equal length together so the summation tree is identical.
        prec = np.zeros((stop - start, num_g), dtype=np.float64)
        prec[rows, ranks] = hit_no / (ranks + 1.0)
        keep_len = n_keep[valid_rows]
        for k in np.unique(keep_len):
            sel = valid_rows[keep_len == k]
            sums = np.ascontiguousarray(prec[sel, :k]).sum(axis=1)
            ap[start + sel] = sums / num_rel[sel]
        del prec

    valid = first_rank >= 0
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise ValueError("no valid query: no query identity appears in the gallery "
                         "under another camera")
    hist = np.bincount(np.minimum(first_rank[valid], max_rank), minlength=max_rank + 1)
    counts = np.cumsum(hist[:max_rank])
    cmc = counts.astype(np.float32) / np.float32(num_valid)
    ap_valid = ap[valid]
    inp_valid = inp[valid]
    return {
        "cmc": cmc,
        "mAP": float(np.mean(ap_valid)),
        "mINP": float(np.mean(inp_valid)),
        "num_valid_query": num_valid,
        "AP": ap_valid,
        "INP": inp_valid,
        "valid_query_index": np.flatnonzero(valid),
    }
