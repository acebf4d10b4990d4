"""Timing two callables against each other with torch.utils.benchmark."""
from __future__ import annotations

import torch
from torch.utils.benchmark import Timer


def time_pair(fa, fb, repeats: int) -> tuple[float, float]:
    """Seconds per call of `fa` and of `fb`: the minimum over `repeats` interleaved single-call
    measurements of each (torch.utils.benchmark synchronises CUDA; interleaving and the minimum
    keep a shared machine's load out of the ratio). One warm-up call each first."""
    threads = torch.get_num_threads()
    ta = Timer("f()", globals={"f": fa}, num_threads=threads)
    tb = Timer("f()", globals={"f": fb}, num_threads=threads)
    ta.timeit(1), tb.timeit(1)  # warm-up: allocator, kernels, lazy initialisation
    a, b = [], []
    for _ in range(repeats):
        a.append(ta.timeit(1).median)
        b.append(tb.timeit(1).median)
    return min(a), min(b)
