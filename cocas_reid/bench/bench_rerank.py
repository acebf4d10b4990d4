"""k-reciprocal re-ranking: the vectorised `rerank.re_ranking` against torchreid's per-sample
loop (`reference.re_ranking_loop`), on the same clustered random features.

    python bench/bench_rerank.py [--quick]      # 800 x 8,000 (--quick: 200 x 2,000), k1 20, k2 6, lambda 0.3

Prints both times, the largest absolute difference of the re-ranked distances (target <= 1e-6)
and the speed ratio (target >= 5x); the last line is JSON {max_abs_diff, speed_ratio, ...}.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from torch.utils.benchmark import Timer

from cocas_reid.engine import euclidean_squared
from cocas_reid.reference import re_ranking_loop
from cocas_reid.rerank import re_ranking


def features(nq: int, ng: int, dim: int = 64, ids: int = 500, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(ids, dim))
    q = centers[rng.integers(0, ids, nq)] + 0.5 * rng.normal(size=(nq, dim))
    g = centers[rng.integers(0, ids, ng)] + 0.5 * rng.normal(size=(ng, dim))
    return q.astype(np.float32), g.astype(np.float32)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="200 queries x 2,000 gallery items")
    p.add_argument("--threads", type=int, default=1, help="torch / BLAS threads")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    nq, ng = (200, 2000) if a.quick else (800, 8000)
    qf, gf = features(nq, ng)
    qg, qq, gg = euclidean_squared(qf, gf), euclidean_squared(qf, qf), euclidean_squared(gf, gf)
    out = {}
    env = {"qg": qg, "qq": qq, "gg": gg, "out": out, "vec": re_ranking, "loop": re_ranking_loop}
    t_vec = Timer("out['vec'] = vec(qg, qq, gg)", globals=env).timeit(1).mean
    t_loop = Timer("out['loop'] = loop(qg, qq, gg)", globals=env).timeit(1).mean
    diff = float(np.abs(out["vec"] - out["loop"]).max())
    res = {"queries": nq, "gallery": ng, "seconds_vectorised": round(t_vec, 3), "seconds_loop": round(t_loop, 3),
           "max_abs_diff": diff, "speed_ratio": round(t_loop / t_vec, 2)}
    print(f"re-ranking {nq} x {ng} (k1 20, k2 6, lambda 0.3): vectorised {t_vec:.2f} s, torchreid loop {t_loop:.2f} s "
          f"-> {t_loop / t_vec:.1f}x faster; max |difference| {diff:.2e} (target <= 1e-6)")
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
