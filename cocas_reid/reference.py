"""Per-sample loop references that the vectorised code is tested and benchmarked against.

- `re_ranking_loop`: torchreid's `re_ranking` (torchreid/utils/rerank.py, after Zhong et al.'s
  code, float32 throughout), one query / gallery item at a time with a dense N x N V.
- `xqda_covariances_loop`, `xqda_distance_loop`: XQDA's intra- and extra-personal covariances by
  enumerating every ordered pair of training samples, and its Mahalanobis distance pair by pair.

Slow on purpose; nothing outside the tests and `bench/` calls them.
"""
from __future__ import annotations

import numpy as np

__all__ = ["re_ranking_loop", "xqda_covariances_loop", "xqda_distance_loop"]


def _reciprocal(initial_rank: np.ndarray, i: int, k: int) -> np.ndarray:
    forward = initial_rank[i, :k]
    backward = initial_rank[forward, :k]
    return forward[np.where(backward == i)[0]]


def re_ranking_loop(q_g_dist, q_q_dist, g_g_dist, k1: int = 20, k2: int = 6, lambda_value: float = 0.3) -> np.ndarray:
    q_g_dist, q_q_dist, g_g_dist = (np.asarray(x) for x in (q_g_dist, q_q_dist, g_g_dist))
    dist = np.concatenate([np.concatenate([q_q_dist, q_g_dist], axis=1),
                           np.concatenate([q_g_dist.T, g_g_dist], axis=1)], axis=0)
    dist = np.power(dist, 2).astype(np.float32)
    dist = np.transpose(1.0 * dist / np.max(dist, axis=0))
    n, nq = dist.shape[0], q_g_dist.shape[0]
    v = np.zeros_like(dist, dtype=np.float32)
    initial_rank = np.argsort(dist).astype(np.int32)
    half = int(np.around(k1 / 2.0)) + 1
    for i in range(n):
        recip = _reciprocal(initial_rank, i, k1 + 1)
        expansion = recip
        for c in recip:
            cand = _reciprocal(initial_rank, c, half)
            if len(np.intersect1d(cand, recip)) > 2.0 / 3 * len(cand):
                expansion = np.append(expansion, cand)
        expansion = np.unique(expansion)
        weight = np.exp(-dist[i, expansion])
        v[i, expansion] = 1.0 * weight / np.sum(weight)
    dist = dist[:nq]
    if k2 != 1:
        v_qe = np.zeros_like(v, dtype=np.float32)
        for i in range(n):
            v_qe[i, :] = np.mean(v[initial_rank[i, :k2], :], axis=0)
        v = v_qe
    inv_index = [np.where(v[:, i] != 0)[0] for i in range(n)]
    jaccard = np.zeros_like(dist, dtype=np.float32)
    for i in range(nq):
        temp_min = np.zeros((1, n), dtype=np.float32)
        nonzero = np.where(v[i, :] != 0)[0]
        for m in nonzero:
            rows = inv_index[m]
            temp_min[0, rows] = temp_min[0, rows] + np.minimum(v[i, m], v[rows, m])
        jaccard[i] = 1 - temp_min / (2.0 - temp_min)
    final = jaccard * (1 - lambda_value) + dist * lambda_value
    return final[:nq, nq:]


def xqda_covariances_loop(x, pids) -> tuple[np.ndarray, np.ndarray]:
    """(Sigma_I, Sigma_E): mean outer products of x_i - x_j over ordered pairs i != j of the same /
    of different identities."""
    x = np.asarray(x, np.float64)
    n, d = x.shape
    s_i, s_e = np.zeros((d, d)), np.zeros((d, d))
    n_i = n_e = 0
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            diff = (x[i] - x[j])[:, None]
            if pids[i] == pids[j]:
                s_i += diff @ diff.T
                n_i += 1
            else:
                s_e += diff @ diff.T
                n_e += 1
    return s_i / n_i, s_e / n_e


def xqda_distance_loop(w, m, a, b) -> np.ndarray:
    """d(x, z) = (x - z)^T W M W^T (x - z), pair by pair."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    kernel = w @ m @ w.T
    out = np.empty((a.shape[0], b.shape[0]))
    for i in range(a.shape[0]):
        for j in range(b.shape[0]):
            diff = a[i] - b[j]
            out[i, j] = diff @ kernel @ diff
    return out
