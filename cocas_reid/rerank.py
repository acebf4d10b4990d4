"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), vectorised over sparse neighbour sets.

Same inputs, same arithmetic and same output as torchreid's `re_ranking(q_g_dist, q_q_dist,
g_g_dist, k1=20, k2=6, lambda_value=0.3)` (a per-sample loop; `reference.re_ranking_loop` is its
transcription, and the tests and `bench/bench_rerank.py` compare the two to 1e-6):

1. the query+gallery distance matrix D (N x N), squared, each column divided by its maximum and
   transposed: O[i, j] = D[j, i]^2 / max_m D[m, i]^2;
2. R(i): the k-reciprocal neighbours among the k1+1 nearest (j in top(i) and i in top(j));
   expanded by R_half(c) (reciprocal among the round(k1/2)+1 nearest) of each c in R(i) whose
   R_half(c) shares more than 2/3 of its members with R(i);
3. V[i, j] = exp(-O[i, j]) / sum over the expansion (0 outside it); local query expansion
   V <- mean of V over the k2 nearest rows;
4. Jaccard distance 1 - sum_m min(V_i, V_j) / (2 - sum_m min(V_i, V_j)), mixed with O:
   final = (1 - lambda) * jaccard + lambda * O, query rows, gallery columns.

Differences from the loop, on purpose: neighbour lists come from a partial sort (torch.topk)
instead of a full argsort of every row, V is a sparse matrix instead of a dense N x N one, and the
Jaccard sums join V's non-zeros column by column; memory stays O(N * k) plus one chunk of dense
rows. Distances tied exactly at the k-th neighbour may be broken differently (the loop's order
is that of numpy's unstable sort); with real-valued features such ties do not occur.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import sparse

__all__ = ["re_ranking"]

_CHUNK_ELEMS = 1 << 22  # dense elements per chunk of rows (16 MB of float32)


def _rows(q_g, q_q, g_g, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """(O[start:stop] in float32, the divisor of each row): rows of the transposed,
    column-normalised squared distances."""
    nq = q_g.shape[0]
    parts = []
    if start < nq:  # column i of D for a query i: q_q[:, i] then q_g[i, :]
        s = slice(start, min(stop, nq))
        parts.append(np.concatenate([q_q[:, s].T, q_g[s]], axis=1))
    if stop > nq:  # for a gallery item g: q_g[:, g] then g_g[:, g]
        s = slice(max(start, nq) - nq, stop - nq)
        parts.append(np.concatenate([q_g[:, s].T, g_g[:, s].T], axis=1))
    d = np.power(np.concatenate(parts, axis=0), 2).astype(np.float32)
    top = d.max(axis=1, keepdims=True)
    return d / top, top[:, 0]


def _entries(q_g, q_q, g_g, rows: np.ndarray, cols: np.ndarray, divisor: np.ndarray) -> np.ndarray:
    """O[rows, cols] (float32) gathered from the blocks of D, O[i, j] = D[j, i]^2 / divisor[i]."""
    nq = q_g.shape[0]
    d = np.empty(rows.size, np.float32)
    for rq, cq, block in ((True, True, lambda r, c: q_q[c, r]), (True, False, lambda r, c: q_g[r, c - nq]),
                          (False, True, lambda r, c: q_g[c, r - nq]), (False, False, lambda r, c: g_g[c - nq, r - nq])):
        sel = ((rows < nq) == rq) & ((cols < nq) == cq)
        d[sel] = block(rows[sel], cols[sel])
    return np.power(d, 2).astype(np.float32) / divisor[rows]


def _neighbour_matrix(top: np.ndarray, n: int) -> sparse.csr_matrix:
    rows = np.repeat(np.arange(top.shape[0]), top.shape[1])
    return sparse.csr_matrix((np.ones(rows.size, np.float32), (rows, top.ravel())), shape=(n, n))


def re_ranking(q_g_dist, q_q_dist, g_g_dist, k1: int = 20, k2: int = 6, lambda_value: float = 0.3,
               chunk_size: int | None = None) -> np.ndarray:
    """Re-ranked query x gallery distances (float32), see the module docstring."""
    q_g, q_q, g_g = (np.asarray(x) for x in (q_g_dist, q_q_dist, g_g_dist))
    nq, ng = q_g.shape
    if q_q.shape != (nq, nq) or g_g.shape != (ng, ng):
        raise ValueError(f"re_ranking: q_q {q_q.shape} and g_g {g_g.shape} do not match q_g {q_g.shape}")
    n = nq + ng
    chunk = max(1, int(chunk_size) if chunk_size else _CHUNK_ELEMS // n)
    k = min(k1 + 1, n)
    kh = min(int(np.around(k1 / 2.0)) + 1, n)
    kq = min(k2, n)

    # 1. the k1+1 nearest of every row, nearest first (a partial sort), and the row divisors
    top = np.empty((n, k), dtype=np.int64)
    divisor = np.empty(n, np.float32)
    for s in range(0, n, chunk):
        o, divisor[s:s + chunk] = _rows(q_g, q_q, g_g, s, min(n, s + chunk))
        top[s:s + o.shape[0]] = torch.topk(torch.from_numpy(o), k, dim=1, largest=False, sorted=True).indices.numpy()

    # 2. k-reciprocal sets and their expansion
    fwd = _neighbour_matrix(top, n)
    recip = fwd.multiply(fwd.T).tocsr()
    fwd_h = _neighbour_matrix(top[:, :kh], n)
    recip_h = fwd_h.multiply(fwd_h.T).tocsr()
    size_h = np.asarray(recip_h.sum(axis=1)).ravel()
    overlap = (recip @ recip_h.T).tocsr()  # overlap[i, c] = |R(i) & R_half(c)|
    rc = recip.tocoo()
    shared = np.asarray(overlap[rc.row, rc.col]).ravel()
    keep = shared > 2.0 / 3 * size_h[rc.col]
    cand = sparse.csr_matrix((np.ones(int(keep.sum()), np.float32), (rc.row[keep], rc.col[keep])), shape=(n, n))
    expansion = (recip + cand @ recip_h).tocsr()
    expansion.data[:] = 1.0
    expansion.eliminate_zeros()
    expansion.sort_indices()

    # 3. Gaussian-kernel weights over each expansion, then local query expansion
    rows = np.repeat(np.arange(n), np.diff(expansion.indptr))
    w = np.exp(-_entries(q_g, q_q, g_g, rows, expansion.indices, divisor))
    data = (w / np.bincount(rows, weights=w, minlength=n)[rows]).astype(np.float32)
    v = sparse.csr_matrix((data, expansion.indices, expansion.indptr), shape=(n, n))
    if k2 != 1:
        qe = _neighbour_matrix(top[:, :kq], n) * np.float32(1.0 / kq)
        v = (qe @ v).tocsr()
    v.eliminate_zeros()

    # 4. Jaccard distances of the queries to the gallery, joined on V's non-zero columns
    vq = v[:nq]
    vg_t = v[nq:].T.tocsr()  # row m: the gallery items with V[g, m] != 0
    out = np.empty((nq, ng), np.float32)
    per_row = max(1, int(np.diff(vq.indptr).mean() * max(1.0, np.diff(vg_t.indptr).mean())) if vq.nnz else 1)
    qchunk = max(1, min(chunk, _CHUNK_ELEMS // max(per_row, ng)))
    for s in range(0, nq, qchunk):
        e = min(nq, s + qchunk)
        sub = vq[s:e].tocoo()
        starts, lens = vg_t.indptr[sub.col], np.diff(vg_t.indptr)[sub.col]
        total = int(lens.sum())
        offset = np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(total)
        rows = np.repeat(sub.row, lens)
        mins = np.minimum(np.repeat(sub.data, lens), vg_t.data[offset])
        inter = np.bincount(rows * ng + vg_t.indices[offset], weights=mins, minlength=(e - s) * ng)
        inter = inter.reshape(e - s, ng).astype(np.float32)
        jaccard = 1 - inter / (2.0 - inter)
        o = np.power(q_g[s:e], 2).astype(np.float32) / divisor[s:e, None]
        out[s:e] = jaccard * (1 - lambda_value) + o * lambda_value
    return out
