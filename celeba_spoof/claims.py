"""The paper's central claim on the toy data, over seeds: the auxiliary supervision of AENet_C,S,G
(semantic heads S^f, S^s, S^i and geometric heads G^d, G^r) improves on the baseline C trained
with the live/spoof label alone.

    cd celeba_spoof && python claims.py [--seeds 0 1 2] [--config configs/toy.yaml]     (= make celeba_spoof-claims)

For every seed s, train.py trains AENet_C,S,G and the baseline C on the toy data with the same
recipe and seed s and scores the test list (threshold chosen on the validation subjects). The
test metrics of both go to `results/reproduced.json` (rows of the `toy` table, mean over seeds,
and the claims on ACER and AUC with per-seed values and verdicts); seed 0's ROC curves and score
histograms are copied to `results/`. Runs go to `--output-dir` (default `<repo>/runs/claims/...`).
Not a test: about 2.5 minutes of CPU per seed on 2 cores.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from celeba_spoof import train
from celeba_spoof.report import COLUMNS
from shared import config, results

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
COMMAND = "make celeba_spoof-claims"
ARMS = {"CSG": "AENet_C,S,G", "C": "baseline (C)"}
# (claim id, metric, higher is better)
CLAIMS = (("aenet_csg_vs_c_acer", "ACER", False), ("aenet_csg_vs_c_auc", "AUC (%)", True))


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("celeba_spoof claims: AENet_C,S,G vs the baseline C", add_help=add_help)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    p.add_argument("--config", default=str(HERE / "configs" / "toy.yaml"), help="the recipe (toy data)")
    p.add_argument("--output-dir", default=str(Path(config.default_output_dir()) / "claims"), help="root of the runs")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.add_argument("--results", default=str(RESULTS), help="folder of reproduced.json and the plots")
    return p


def metrics_row(m: dict) -> dict:
    """The paper's columns from a run's flat metrics (AUC in percent, as the table prints it)."""
    return {("AUC (%)" if c == "AUC" else c): (100 * m[c] if c == "AUC" else m[c]) for c in COLUMNS}


def run_seed(args, seed: int) -> dict:
    """Both variants with one seed: {variant: (run folder, test metrics, threshold from val)}."""
    targs = config.parse_args(train.get_args_parser(), ["--config", args.config, "--seed", str(seed), "--device",
                                                        args.device, "--output-dir", args.output_dir,
                                                        "--variants", *ARMS])
    outcome = train.main(targs)
    return {v: (run_dir, metrics_row(res["metrics"]["test@val"])) for v, (run_dir, res) in outcome.items()}


def record(args, per_seed: dict, cfg: str) -> list[dict]:
    seeds = sorted(per_seed)
    data = "toy"
    rows = []
    for v, name in ARMS.items():
        runs = [per_seed[s][v][1] for s in seeds]
        mean = {c: sum(r[c] for r in runs) / len(runs) for c in runs[0]}
        rows.append(results.reproduced_row("toy", f"{name}, threshold from val", mean, command=COMMAND, data=data,
                                           config=cfg, seeds=seeds, per_seed={str(s): per_seed[s][v][1] for s in seeds}))
    claims = []
    for cid, metric, higher in CLAIMS:
        arms = {ARMS[v]: [per_seed[s][v][1][metric] for s in seeds] for v in ARMS}
        claims.append(results.claim(
            cid, "the auxiliary supervision (AENet_C,S,G) beats the live/spoof label alone (C)", metric, arms,
            ARMS["CSG"], ARMS["C"], seeds=seeds, command=COMMAND, data=data, config=cfg, higher_is_better=higher,
            note="test list, threshold from the validation subjects (ACER); AUC does not depend on it"))
    results.update_reproduced(Path(args.results) / "reproduced.json", rows=rows, claims=claims)
    return claims


def main(args):
    per_seed = {s: run_seed(args, s) for s in args.seeds}
    cfg = Path(args.config).resolve()
    claims = record(args, per_seed, str(cfg.relative_to(HERE)) if cfg.is_relative_to(HERE) else args.config)
    first = per_seed[min(per_seed)]
    for v in ARMS:
        for plot in ("roc", "scores"):
            shutil.copyfile(first[v][0] / f"{plot}.png", Path(args.results) / f"{plot}_{v}.png")
    for c in claims:
        s = c["summary"]
        print(f"{c['metric']} over seeds {c['seeds']}: {c['method']} {s[c['method']]['mean']:.2f} ± "
              f"{s[c['method']]['std']:.2f}, {c['baseline']} {s[c['baseline']]['mean']:.2f} ± "
              f"{s[c['baseline']]['std']:.2f}; paired difference {c['difference']['mean']:+.2f} ± "
              f"{c['difference']['std']:.2f} (better = {'higher' if c['higher_is_better'] else 'lower'}): {c['verdict']}")
    print(f"written: {Path(args.results) / 'reproduced.json'} and the seed-{min(per_seed)} plots")
    return claims


if __name__ == "__main__":
    main(get_args_parser().parse_args())
