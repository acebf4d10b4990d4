"""Benchmark: vectorised ``shared.metrics.reid.evaluate_rank`` vs a per-query loop reference.

The reference is torchreid's ``eval_market1501`` Python path (plus fast-reid's mINP), written out
here so the benchmark needs neither package. Run:

    python shared/bench/bench_reid.py            # 800 x 8,000 (and 2,000 x 20,000)
    python shared/bench/bench_reid.py --quick    # 800 x 8,000 only

It prints both timings, the speed-up and whether CMC, per-query AP, mAP and mINP are identical
(bit for bit).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from shared.metrics.reid import evaluate_rank


def reference_eval_market1501(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    """Per-query loop in the style of torchreid's Python path; returns cmc, mAP, mINP, APs.

    Only difference: queries whose remaining gallery is shorter than ``max_rank`` get their
    curve padded with its last value (1) instead of crashing.
    """
    num_q, num_g = distmat.shape
    indices = np.argsort(distmat, axis=1)
    matches = (g_pids[indices] == q_pids[:, np.newaxis]).astype(np.int32)
    all_cmc, all_ap, all_inp = [], [], []
    num_valid_q = 0.0
    for q_idx in range(num_q):
        q_pid, q_camid = q_pids[q_idx], q_camids[q_idx]
        order = indices[q_idx]
        remove = (g_pids[order] == q_pid) & (g_camids[order] == q_camid)
        keep = np.invert(remove)
        raw_cmc = matches[q_idx][keep]
        if not np.any(raw_cmc):
            continue
        cmc = raw_cmc.cumsum()
        pos_idx = np.where(raw_cmc == 1)
        max_pos_idx = np.max(pos_idx)
        all_inp.append(cmc[max_pos_idx] / (max_pos_idx + 1.0))
        cmc[cmc > 1] = 1
        cmc = cmc[:max_rank]
        if cmc.size < max_rank:
            cmc = np.concatenate([cmc, np.full(max_rank - cmc.size, cmc[-1])])
        all_cmc.append(cmc)
        num_valid_q += 1.0
        num_rel = raw_cmc.sum()
        tmp_cmc = raw_cmc.cumsum()
        tmp_cmc = [x / (i + 1.0) for i, x in enumerate(tmp_cmc)]
        tmp_cmc = np.asarray(tmp_cmc) * raw_cmc
        all_ap.append(tmp_cmc.sum() / num_rel)
    assert num_valid_q > 0
    all_cmc = np.asarray(all_cmc).astype(np.float32)
    all_cmc = all_cmc.sum(0) / num_valid_q
    return all_cmc, np.mean(all_ap), np.mean(all_inp), np.asarray(all_ap)


def make_problem(num_q, num_g, num_ids, num_cams=6, seed=0, dim=64):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(num_ids, dim)).astype(np.float32)
    q_pids = rng.integers(0, num_ids, num_q)
    g_pids = rng.integers(0, num_ids, num_g)
    qf = centers[q_pids] + 1.2 * rng.normal(size=(num_q, dim)).astype(np.float32)
    gf = centers[g_pids] + 1.2 * rng.normal(size=(num_g, dim)).astype(np.float32)
    distmat = ((qf ** 2).sum(1, keepdims=True) + (gf ** 2).sum(1)[None] - 2 * qf @ gf.T)
    return (distmat.astype(np.float32), q_pids * 7 + 3, g_pids * 7 + 3,
            rng.integers(0, num_cams, num_q), rng.integers(0, num_cams, num_g))


def bench(num_q, num_g, num_ids, max_rank=50, ref=True):
    args = make_problem(num_q, num_g, num_ids)
    t0 = time.perf_counter()
    out = evaluate_rank(*args, max_rank=max_rank)
    t_vec = time.perf_counter() - t0
    line = f"{num_q:>6} x {num_g:<6}  vectorised {t_vec:8.3f} s"
    if ref:
        t0 = time.perf_counter()
        cmc, m_ap, m_inp, aps = reference_eval_market1501(*args, max_rank=max_rank)
        t_ref = time.perf_counter() - t0
        same = (np.array_equal(cmc, out["cmc"]) and cmc.dtype == out["cmc"].dtype
                and np.array_equal(aps, out["AP"]) and m_ap == out["mAP"] and m_inp == out["mINP"])
        line += (f"  loop reference {t_ref:8.3f} s  speed-up {t_ref / t_vec:6.1f}x  "
                 f"identical (cmc, AP, mAP, mINP): {same}")
    line += f"  mAP={out['mAP']:.6f} rank1={out['cmc'][0]:.6f}"
    print(line, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the 800 x 8,000 case")
    parser.add_argument("--huge", action="store_true",
                        help="also 20,000 x 20,000, vectorised only (memory-bounded check)")
    a = parser.parse_args()
    bench(800, 8000, 700)
    if not a.quick:
        bench(2000, 20000, 1500)
    if a.huge:
        bench(20000, 20000, 1500, ref=False)


if __name__ == "__main__":
    main()
