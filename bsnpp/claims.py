"""The paper's central comparison on the toy data, over seeds -> results/reproduced.json.

    make bsnpp-claims          # = cd bsnpp && python claims.py  (3 seeds x 2 configurations; minutes on CPU)
    python claims.py --seeds 0 1 2 --epochs 8 [--output-dir DIR] [--device cpu]

For each training seed (the toy data itself is fixed, seed 0): BSN++ (`configs/toy.yaml`) and the
BMN configuration (`configs/toy_bmn.yaml`: TEM, one direction, no PRB, no re-sampling, BMN's loss
weights), same data, schedule and evaluation; beside them the two baselines every run scores, the
no-feature prior (the mean training targets, post-processed like the network's output) and 100
random proposals per video. Records the mean rows of the toy table, the claims (paired per seed,
verdict from `shared.results`) and draws the first seed's AR-AN curves (both models, both
baselines) into results/ar_an_toy.png.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from bsnpp import train
from shared import config, results
from shared.metrics.plots import plot_ar_an_compare

HERE = Path(__file__).resolve().parent

CONFIGS = {"BSN++": "configs/toy.yaml", "BMN configuration": "configs/toy_bmn.yaml"}
COLUMNS = ["AR@1", "AR@5", "AR@10", "AR@100", "AUC"]
COMMAND = "make bsnpp-claims"


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("bsnpp claims", add_help=add_help)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    p.add_argument("--epochs", type=int, default=None, help="override the configs' epochs (default: theirs, 8)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--output-dir", default=None, help="root of the run folders (default: <repo>/runs)")
    p.add_argument("--out", default=str(HERE / "results" / "reproduced.json"), help="file to update")
    return p


def run_one(cfg: str, seed: int, a) -> dict:
    argv = ["--config", str(HERE / cfg), "--seed", str(seed), "--device", a.device]
    if a.epochs:
        argv += ["--epochs", str(a.epochs)]
    if a.output_dir:
        argv += ["--output-dir", a.output_dir]
    run_dir, _ = train.main(config.parse_args(train.get_args_parser(), argv))
    res = json.loads((run_dir / "results.json").read_text())
    res["run_dir"] = str(run_dir)
    return res


def main(a) -> dict:
    arms = {name: [] for name in [*CONFIGS, "prior baseline", "random proposals"]}
    curves = {}
    for seed in a.seeds:
        for name, cfg in CONFIGS.items():
            res = run_one(cfg, seed, a)
            arms[name].append(res["metrics"])
            if name == "BSN++":  # the baselines depend on the training set and the seed, not the model
                arms["prior baseline"].append(res["baseline_prior"])
                arms["random proposals"].append(res["baseline_random"])
            if seed == a.seeds[0]:
                curves[name] = res["curves"]["ours"]
                if name == "BSN++":
                    curves.update({k: v for k, v in res["curves"].items() if k != "ours"})
            print(f"seed {seed} {name}: AUC {res['metrics']['AUC']:.2f}", flush=True)
    seeds = list(a.seeds)
    rows = [results.reproduced_row("toy", f"{name}{' (ours)' if name in CONFIGS else ''}",
                                   {k: sum(m[k] for m in ms) / len(ms) for k in COLUMNS}, command=COMMAND,
                                   data="toy", config=CONFIGS.get(name, CONFIGS["BSN++"]), seeds=seeds)
            for name, ms in arms.items()]
    auc = {name: [m["AUC"] for m in ms] for name, ms in arms.items()}
    ar100 = {name: [m["AR@100"] for m in ms] for name, ms in arms.items()}
    kw = dict(seeds=seeds, command=COMMAND, data="toy", config="configs/toy.yaml, configs/toy_bmn.yaml")
    claims = [
        results.claim("bsnpp_vs_bmn", "BSN++ beats the BMN configuration (AUC)", "AUC", auc, "BSN++",
                      "BMN configuration", **kw),
        results.claim("bsnpp_vs_bmn_ar100", "BSN++ beats the BMN configuration (AR@100)", "AR@100", ar100, "BSN++",
                      "BMN configuration", **kw),
        results.claim("bsnpp_vs_prior", "BSN++ beats the no-feature prior", "AUC", auc, "BSN++", "prior baseline", **kw),
        results.claim("bmn_vs_prior", "the BMN configuration beats the no-feature prior", "AUC", auc,
                      "BMN configuration", "prior baseline", **kw),
        results.claim("bsnpp_vs_random", "BSN++ beats 100 random proposals per video", "AUC", auc, "BSN++",
                      "random proposals", **kw),
    ]
    data = results.update_reproduced(a.out, rows=rows, claims=claims)
    plot = Path(a.out).parent / "ar_an_toy.png"
    plot_ar_an_compare(curves, plot, title=f"toy validation, seed {a.seeds[0]}: average recall")
    for c in claims:
        print(f"{c['claim']}: {c['difference']['mean']:+.2f} +- {c['difference']['std']:.2f} -> {c['verdict']}")
    print(f"updated {a.out}; AR-AN plot {plot}")
    return data


if __name__ == "__main__":
    main(get_args_parser().parse_args())
