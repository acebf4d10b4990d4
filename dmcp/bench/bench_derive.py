"""Architecture derivation time: expected sampling (with the budget repair) and direct sampling
by rejection, both with analytic FLOPs, against counting one architecture with a forward pass
(what the official code does for every sample: 3,000 of them per validation).

    python bench/bench_derive.py [--quick] [--models resnet50 mobilenet_v2]
"""
from __future__ import annotations

import argparse

import torch
from torch.utils.benchmark import Timer

from dmcp.derive import derive, direct_sampling, export_pruned
from dmcp.supernet import build_supernet
from shared.metrics.flops import count_madds


def _seconds(fn) -> tuple[float, object]:
    """One call of `fn` timed by torch.utils.benchmark, and its result."""
    out = []
    t = Timer("out.append(f())", globals={"f": fn, "out": out}, num_threads=torch.get_num_threads()).timeit(1)
    return t.median, out[-1]


def bench(model, max_width, target_madds, n_ds):
    torch.manual_seed(0)
    net = build_supernet(model, max_width=max_width)
    with torch.no_grad():
        for g in net.gates:
            g.alpha.uniform_(-1, 4, generator=torch.Generator().manual_seed(len(g.name)))
    es_s, rec = _seconds(lambda: derive(net, target_madds, "es"))
    centre = float(net.madds(net.channels_of(net.sample_markov(torch.Generator().manual_seed(0), 512))).median())
    ds_s, (_, info) = _seconds(lambda: direct_sampling(net, centre, n=n_ds, generator=torch.Generator().manual_seed(1)))
    plain = export_pruned(net, [rec["gates"][g.name]["state"] for g in net.gates], copy_weights=False)
    fwd_s, counted = _seconds(lambda: count_madds(plain, (1, 3, 224, 224)))
    assert counted == rec["madds"]
    return es_s * 1e3, rec, ds_s * 1e3, info, fwd_s * 1e3


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer direct samples (make bench)")
    p.add_argument("--models", nargs="+", default=["resnet50", "mobilenet_v2"])
    args = p.parse_args(argv)
    n_ds = 10 if args.quick else 100
    print("architecture derivation (analytic FLOPs) vs one counting forward pass, 224^2, CPU")
    for model in args.models:
        mw, target = (1.5, 300.0) if model == "mobilenet_v2" else (1.0, 2200.0)  # MFLOPs
        es_ms, rec, ds_ms, info, fwd_ms = bench(model, mw, target * 1e6, n_ds)
        print(f"  {model}: ES + repair {es_ms:6.1f} ms ({rec['madds'] / 1e6:.1f} MFLOPs for {target:.0f}, "
              f"{rec['derivation']['repaired_groups']} groups moved); DS {n_ds} accepted of "
              f"{info['draws']} draws in {ds_ms:6.1f} ms; one forward-pass count {fwd_ms:6.1f} ms "
              f"(official: 3,000 per validation = {3000 * fwd_ms / 1e3:.0f} s)")


if __name__ == "__main__":
    main()
