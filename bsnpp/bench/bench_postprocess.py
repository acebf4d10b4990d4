"""Benchmark of ``bsnpp.postprocess`` against BMN's literal Python loops.

The numpy steps are timed with ``time.perf_counter`` per video (they are not torch code); the
batched torch Soft-NMS with ``torch.utils.benchmark.Timer``.

Baseline: the line-by-line transcriptions of JJBOY/BMN's candidate double loop
(``main.py::BMN_inference``) and ``post_processing.py::Soft_NMS`` (+ top-K cut) kept in
``bsnpp/tests/test_postprocess.py`` (loaded from there, so tests and benchmark share one
reference). Inputs: random boundary curves and confidence maps with T = D = 100 and no boundary
filter (``boundary_filter="none"``: 5,050 candidates per video, the worst case and the
"~4,950 candidates" load of BMN's Soft-NMS); a second table uses BMN's filter (fewer candidates).

Usage::

    python bsnpp/bench/bench_postprocess.py            # 1,000 videos (several minutes: the loops are slow)
    python bsnpp/bench/bench_postprocess.py --quick    # 20 videos
    python bsnpp/bench/bench_postprocess.py --videos 20 --tscale 100
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from bsnpp.postprocess import (  # noqa: E402
    generate_candidates,
    postprocess_many,
    soft_nms,
    soft_nms_torch,
)


def _load_reference():
    path = _ROOT / "bsnpp" / "tests" / "test_postprocess.py"
    spec = importlib.util.spec_from_file_location("_bsnpp_postprocess_reference", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.bmn_candidates_loop, mod.bmn_soft_nms_loop


def _outputs(rng, n, T):
    out = []
    for _ in range(n):
        # smooth-ish boundary curves with a few peaks, like a trained TEM; uniform maps
        start = np.clip(rng.random(T) ** 3 + 0.05 * rng.standard_normal(T), 0, 1)
        end = np.clip(rng.random(T) ** 3 + 0.05 * rng.standard_normal(T), 0, 1)
        out.append((start, end, rng.random((T, T)), rng.random((T, T))))
    return out


def _run(outputs, boundary_filter, ref_cand, ref_nms):
    use_bins = boundary_filter == "bmn"
    t_ref_c = t_ref_n = t_vec_c = t_vec_n = 0.0
    equal = True
    n_cand = []
    for o in outputs:
        t0 = time.perf_counter()
        rc = ref_cand(*o, use_bins=use_bins)
        t1 = time.perf_counter()
        rn = ref_nms(rc)
        t2 = time.perf_counter()
        vc = generate_candidates(*o, boundary_filter=boundary_filter)
        t3 = time.perf_counter()
        vn = soft_nms(vc)
        t4 = time.perf_counter()
        t_ref_c += t1 - t0
        t_ref_n += t2 - t1
        t_vec_c += t3 - t2
        t_vec_n += t4 - t3
        n_cand.append(len(vc))
        equal &= vc.shape == rc.shape and np.array_equal(vc, rc)
        equal &= vn.shape == rn.shape and np.array_equal(vn, rn)
    n = len(outputs)
    print(f"-- boundary_filter={boundary_filter!r}: {n} videos, candidates/video "
          f"mean {np.mean(n_cand):.0f} (min {min(n_cand)}, max {max(n_cand)})")
    rows = [("candidates", t_ref_c, t_vec_c), ("soft-NMS", t_ref_n, t_vec_n),
            ("total", t_ref_c + t_ref_n, t_vec_c + t_vec_n)]
    print(f"   {'step':<11} {'BMN loop ms/video':>18} {'vectorised ms/video':>20} {'ratio':>8}")
    for name, a, b in rows:
        print(f"   {name:<11} {1e3 * a / n:>18.2f} {1e3 * b / n:>20.3f} {a / b:>7.0f}x")
    print(f"   outputs identical to BMN's loops (candidates and kept proposals, bit-exact): {equal}")
    return equal


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=1000, help="videos of random maps (the issue's benchmark: 1,000)")
    ap.add_argument("--tscale", type=int, default=100)
    ap.add_argument("--quick", action="store_true", help="20 videos")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    n = 20 if args.quick else args.videos
    ref_cand, ref_nms = _load_reference()
    outputs = _outputs(np.random.default_rng(args.seed), n, args.tscale)
    print(f"BSN++/BMN post-processing, T = D = {args.tscale}")
    ok = _run(outputs, "none", ref_cand, ref_nms)
    ok &= _run(outputs, "bmn", ref_cand, ref_nms)

    # batched torch Soft-NMS (all videos in one padded batch)
    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None
    if torch is not None:
        from torch.utils.benchmark import Timer

        cands = [generate_candidates(*o, boundary_filter="none")[:, :3] for o in outputs]
        batch = torch.from_numpy(np.stack(cands))
        refs = [soft_nms(c, tie_order="stable") for c in cands]
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # per-core figure, comparable with the numpy rows
        for dev in devices:
            xb = batch.to(dev)
            soft_nms_torch(xb[:1])  # warm-up
            # torch.utils.benchmark synchronises CUDA around the statement
            dt = Timer("soft_nms_torch(xb)", globals={"soft_nms_torch": soft_nms_torch, "xb": xb}).timeit(1).median
            out, n_out = soft_nms_torch(xb)
            out, n_out = out.cpu().numpy(), n_out.cpu().numpy()
            agree = all(
                n_out[b] == len(r) and np.array_equal(out[b, : n_out[b], :2], r[:, :2])
                and np.allclose(out[b, : n_out[b], 2], r[:, 2], rtol=1e-12, atol=0)
                for b, r in enumerate(refs)
            )
            print(f"-- soft_nms_torch on {dev} (1 CPU thread): {n} videos x {batch.shape[1]} candidates in one batch: "
                  f"{1e3 * dt / n:.3f} ms/video; agrees with soft_nms (1e-12): {agree}")
            ok &= agree
        torch.set_num_threads(threads)

    # whole-split driver, in-process vs pool (vectorised only)
    many = {f"v{i}": o for i, o in enumerate(outputs * max(1, 200 // n))}
    durs = {k: 100.0 for k in many}
    for workers in (1, 2):
        t0 = time.perf_counter()
        postprocess_many(many, durs, workers=workers, boundary_filter="none")
        dt = time.perf_counter() - t0
        print(f"-- postprocess_many(workers={workers}, boundary_filter='none'): {len(many)} videos "
              f"in {dt:.2f} s ({1e3 * dt / len(many):.2f} ms/video)")
    if not ok:
        print("MISMATCH against BMN's loops")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
