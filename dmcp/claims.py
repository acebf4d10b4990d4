"""The paper's central claim on the toy data, over seeds: at the same MAdds, the architecture DMCP
searches beats uniform width scaling, both retrained from scratch the same way.

    cd dmcp && python claims.py [--seeds 0 1 2] [--config configs/toy.yaml] [--flops 2.0]     (= make dmcp-claims)

For every seed s: prune.py searches the toy supernet with seed s and derives the expected-sampling
architecture inside [0.95 T, T]; the baseline is the widest uniformly narrowed network within the
same T (`derive.uniform_scaling`: one width multiplier for every prunable layer); train.py
retrains each from scratch with the config's recipe and seed s. The top-1 / top-5 of both, their
counted MAdds and parameters go to `results/reproduced.json` (rows of the `toy` table, mean over
seeds, and the claim with its per-seed values and verdict), and `results/accuracy_madds.png` shows
every run. Runs go to `--output-dir` (default `<repo>/runs/claims/dmcp/...`). Not a test: about
2 minutes of CPU per seed on 2 cores.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from dmcp import build, prune, train
from dmcp.derive import uniform_scaling
from shared import config, results

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ARMS = ("DMCP", "uniform")
COMMAND = "make dmcp-claims"


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("DMCP claims: searched vs uniform width at the same MAdds", add_help=add_help)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="search and retraining seeds")
    p.add_argument("--config", default=str(HERE / "configs" / "toy.yaml"), help="the recipe (toy data)")
    p.add_argument("--flops", type=float, default=None, help="target MFLOPs (default: the config's)")
    p.add_argument("--output-dir", default=str(Path(config.default_output_dir()) / "claims"), help="root of the runs")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.add_argument("--results", default=str(RESULTS), help="folder of reproduced.json and the plot")
    return p


def _argv(args, seed: int, *extra) -> list[str]:
    out = ["--config", args.config, "--seed", str(seed), "--output-dir", args.output_dir, "--device", args.device]
    return out + (["--flops", str(args.flops)] if args.flops is not None else []) + list(extra)


def run_seed(args, seed: int) -> dict:
    """Search, derive, build the uniform baseline, retrain both: {arm: retraining results}."""
    pargs = config.parse_args(prune.get_args_parser(), _argv(args, seed, "--no-then-retrain", "--ds-samples", "0",
                                                               "--no-export-program"))
    run_dir, searched = prune.main(pargs)
    arch = json.loads((run_dir / "arch.json").read_text())
    torch.manual_seed(pargs.seed)
    net = build.supernet_from_args(pargs, int(arch["builder"]["num_classes"]))
    uniform = uniform_scaling(net, build.target_madds(pargs))
    (run_dir / "arch_uniform.json").write_text(json.dumps(uniform, indent=1))
    out = {}
    for arm, path in (("DMCP", run_dir / "arch.json"), ("uniform", run_dir / "arch_uniform.json")):
        _, metrics = train.main(config.parse_args(train.get_args_parser(), _argv(args, seed, "--arch", str(path))))
        out[arm] = {**metrics, "width_multiplier": json.loads(path.read_text()).get("width_multiplier")}
    out["search"] = {"target_madds": searched["target_madds"], "run_dir": str(run_dir)}
    return out


def _mean(values) -> float:
    return sum(values) / len(values)


def record(args, per_seed: dict, paper_cfg: str) -> dict:
    """Rows (mean over seeds) and the claim, merged into reproduced.json."""
    seeds = sorted(per_seed)
    data = "toy"
    rows = []
    for arm in ARMS:
        runs = [per_seed[s][arm] for s in seeds]
        name = "DMCP (expected sampling), retrained" if arm == "DMCP" else "uniform width, retrained"
        rows.append(results.reproduced_row(
            "toy", name, {"MFLOPs": _mean([r["madds"] for r in runs]) / 1e6,
                          "params (M)": _mean([r["params"] for r in runs]) / 1e6,
                          "top-1": _mean([r["top1"] for r in runs]), "top-5": _mean([r["top5"] for r in runs])},
            command=COMMAND, data=data, config=paper_cfg, seeds=seeds,
            per_seed={str(s): {k: per_seed[s][arm][k] for k in ("madds", "params", "top1", "top5")} for s in seeds}))
    target = per_seed[seeds[0]]["search"]["target_madds"]
    claim = results.claim(
        "dmcp_vs_uniform", f"DMCP's searched widths beat uniform width scaling at the same budget "
        f"({target / 1e6:g} MFLOPs), both retrained from scratch", "top-1",
        {arm: [per_seed[s][arm]["top1"] for s in seeds] for arm in ARMS}, "DMCP", "uniform",
        seeds=seeds, command=COMMAND, data=data, config=paper_cfg,
        note="MAdds per seed: " + "; ".join(f"{s}: DMCP {per_seed[s]['DMCP']['madds']:,}, uniform "
                                            f"{per_seed[s]['uniform']['madds']:,}" for s in seeds))
    path = Path(args.results) / "reproduced.json"
    results.update_reproduced(path, rows=rows, claims=[claim])
    return claim


def plot(per_seed: dict, out: Path) -> Path:
    """Top-1 against MFLOPs, every seed's DMCP and uniform network."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    for arm, marker in (("DMCP", "o"), ("uniform", "s")):
        xs = [per_seed[s][arm]["madds"] / 1e6 for s in sorted(per_seed)]
        ys = [per_seed[s][arm]["top1"] for s in sorted(per_seed)]
        ax.scatter(xs, ys, marker=marker, label=f"{arm} ({len(xs)} seeds)")
    ax.set(xlabel="MFLOPs (multiply-adds, 32x32)", ylabel="toy top-1 (%)", title="retrained at the same budget")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def main(args):
    per_seed = {s: run_seed(args, s) for s in args.seeds}
    cfg = str(Path(args.config).resolve().relative_to(HERE)) if Path(args.config).resolve().is_relative_to(HERE) \
        else args.config
    claim = record(args, per_seed, cfg)
    png = plot(per_seed, Path(args.results) / "accuracy_madds.png")
    s = claim["summary"]
    print(f"top-1 over seeds {claim['seeds']}: DMCP {s['DMCP']['mean']:.2f} ± {s['DMCP']['std']:.2f}, uniform "
          f"{s['uniform']['mean']:.2f} ± {s['uniform']['std']:.2f}; paired difference "
          f"{claim['difference']['mean']:+.2f} ± {claim['difference']['std']:.2f}: {claim['verdict']}")
    print(f"written: {Path(args.results) / 'reproduced.json'}, {png}")
    return claim


if __name__ == "__main__":
    main(get_args_parser().parse_args())
