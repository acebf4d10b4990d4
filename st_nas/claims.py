"""`make st_nas-claims`: the paper's central comparison on the toy data over 3 supernet seeds,
recorded in results/reproduced.json (with the toy search's row), not a test: it trains the
stand-alone networks and three supernets, so it takes a while (by default the smaller toy setting
`st_nas.ranking.QUICK` with 30 + 6 supernet epochs, 8 architectures: about 25 minutes of one CPU
core; `--full`: the toy config as it is, over half an hour).

Claims (ST-NAS §3.2, abstract): the SGLD-sampled, averaged proxy (sgld_avg) ranks architectures
closer to their stand-alone accuracy than the last weights of a noise-free supernet (sgd_last) and
than temporal averaging of noise-free snapshots (sgd_avg), measured by Kendall τ per supernet seed;
and it is more stable across supernet seeds (τ between the proxies of two seeds, per seed pair).

    python claims.py [--seeds 0 1 2] [--archs 8] [--full] [--search-run RUN_DIR]
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from shared import results
from shared.config import default_output_dir
from st_nas.ranking import QUICK, VARIANTS, measure, toy_args

HERE = Path(__file__).resolve().parent
COMMAND = "make st_nas-claims"
TAU = "Kendall τ (proxy vs stand-alone top-1)"
# on top of QUICK: a longer supernet chain (with QUICK's 10 + 3 epochs the proxies sit near chance)
SUPERNET = ["--supernet-epochs", "30", "--sgld-epochs", "6"]


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("st_nas claims", add_help=add_help)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="supernet seeds")
    p.add_argument("--archs", type=int, default=8, help="architectures trained stand-alone")
    p.add_argument("--full", action="store_true", help="the toy config as it is, not the smaller setting QUICK")
    p.add_argument("--out-dir", default=str(Path(default_output_dir()) / "st_nas" / "claims"), help="work folder")
    p.add_argument("--search-run", default="", help="take the toy row from this search run folder instead of "
                   "running `python search.py` (the toy default) once more")
    p.add_argument("--set", default="", help="extra search.py flags for every run, as one string: --set '--temperature 2'")
    return p


def claims_from(r: dict, command: str = COMMAND) -> list[dict]:
    common = {"seeds": r["seeds"], "command": command, "data": "toy", "config": "configs/toy.yaml"}
    arms = {v: r["kendall_tau_per_seed"][v] for v in VARIANTS}
    note = f"{len(r['archs'])} architectures, stand-alone top-1 from {len(r['standalone_seeds'])} seed(s)"
    out = [results.claim("st_nas_sgld_vs_last", "SGLD-averaged proxy ranks better than the last weights", TAU,
                         arms, "sgld_avg", "sgd_last", note=note, **common),
           results.claim("st_nas_sgld_vs_avg", "SGLD samples rank better than averaging noise-free snapshots", TAU,
                         arms, "sgld_avg", "sgd_avg", note=note, **common)]
    if r["seed_pairs"]:
        pairs = [f"{a}-{b}" for a, b in r["seed_pairs"]]
        out.append(results.claim("st_nas_stability", "SGLD-averaged proxy is more stable across supernet seeds",
                                 "Kendall τ between two supernet seeds' proxies",
                                 {v: r["stability_tau_per_pair"][v] for v in VARIANTS}, "sgld_avg", "sgd_last",
                                 seeds=pairs, command=command, data="toy", config="configs/toy.yaml", note=note))
    return out


def toy_row(search_run: str, extra: list[str]) -> dict:
    if search_run:
        run_dir = Path(search_run)
    else:
        from st_nas import search
        run_dir, _ = search.main(toy_args(extra))
    res = json.loads((run_dir / "results.json").read_text())
    if res.get("top1") is None:
        raise ValueError(f"{run_dir}: the search was run without --then-retrain (no top-1)")
    return results.reproduced_row("toy", f"ST-NAS ({res['proxy_variant']}, ours)",
                                  {"MAdds (M)": res["madds"] / 1e6, "top-1": res["top1"], "proxy": res["proxy"]},
                                  command="make st_nas-search", data="toy", config="configs/toy.yaml",
                                  seeds=[int(json.loads((run_dir / "run_info.json").read_text())["config"]["seed"])])


def main(args):
    out = Path(args.out_dir)
    extra = ([] if args.full else ["--toy-root", str(out / "toy"), *QUICK, *SUPERNET]) + shlex.split(args.set)
    r = measure(toy_args(extra), out / "ranking", archs=args.archs, seeds=tuple(args.seeds))
    flags = " ".join(shlex.quote(a) for a in ["--archs", str(args.archs), "--seeds", *map(str, args.seeds)]
                     + (["--full"] if args.full else []) + (["--set", args.set] if args.set else []))
    claims = claims_from(r, f'{COMMAND} ARGS="{flags}"')
    row = toy_row(args.search_run, shlex.split(args.set))
    data = results.update_reproduced(HERE / "results" / "reproduced.json", rows=[row], claims=claims)
    for c in claims:
        print(f"{c['claim']}: {c['summary'][c['method']]['mean']:.3f} vs {c['summary'][c['baseline']]['mean']:.3f} "
              f"-> {c['verdict']}")
    print(f"wrote {HERE / 'results' / 'reproduced.json'}; run `python table.py --write-readme` to refresh the README")
    return data


if __name__ == "__main__":
    main(get_args_parser().parse_args(sys.argv[1:]))
