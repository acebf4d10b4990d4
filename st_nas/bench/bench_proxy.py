"""How well each proxy ranks architectures on the toy data (the paper's claim), and how stable it
is across two supernet seeds: Kendall τ against stand-alone top-1 for sgld_avg, sgd_last and
sgd_avg (`st_nas.ranking.measure`). Target: sgld_avg >= sgd_last; reported either way.

    python bench/bench_proxy.py [--quick] [--out ranking.json]

--quick: 8 architectures, a 1,300-image toy training set, 10 + 3 supernet epochs and 8 stand-alone
epochs (minutes on one core); without it, the toy config as it is with 10 architectures. The
output JSON holds kendall_tau {variant: τ}, stability_tau, proxy, standalone_top1 and archs.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from st_nas.ranking import QUICK, VARIANTS, measure, toy_args


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("bench_proxy", add_help=add_help)
    p.add_argument("--quick", action="store_true", help="smaller data and schedules")
    p.add_argument("--out", default="", help="write the figures here (JSON)")
    p.add_argument("--archs", type=int, default=None, help="architectures (default 8 quick, 10 otherwise)")
    p.add_argument("--work-dir", default="", help="runs go here (default: a temporary folder)")
    return p


def main(args):
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="st_nas_bench_proxy_"))
    overrides = ["--toy-root", str(work / "toy"), *QUICK] if args.quick else []  # own toy folder: other sizes
    r = measure(toy_args(overrides), work / "ranking", archs=args.archs or (8 if args.quick else 10), seeds=(0, 1))
    for v in VARIANTS:
        print(f"{v:9s} Kendall tau vs stand-alone {r['kendall_tau'][v]:+.3f} (per seed {r['kendall_tau_per_seed'][v]}), "
              f"stability across seeds {r['stability_tau'][v]:+.3f}")
    verdict = "holds" if r["kendall_tau"]["sgld_avg"] >= r["kendall_tau"]["sgd_last"] else "does not hold"
    print(f"sgld_avg >= sgd_last: {verdict} on this run")
    if args.out:
        Path(args.out).write_text(json.dumps(r, indent=1) + "\n")
    print(json.dumps({k: r[k] for k in ("kendall_tau", "stability_tau", "standalone_top1")}))
    return r


if __name__ == "__main__":
    main(get_args_parser().parse_args(sys.argv[1:]))
