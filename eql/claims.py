"""The paper's central claim on the toy data, over 3 seeds: EQL against the sigmoid BCE baseline
(the same detector, C sigmoid classifiers, with the tail classes' negative terms kept), overall
box AP and APr with the LVIS protocol.

    python claims.py [--seeds 0 1 2] [--output-dir DIR]        (make eql-claims; ~9 CPU-minutes)

Each seed trains both losses with configs/toy.yaml (`--compare sigmoid eql`, run folders
runs/eql/toy-claims-seed<k>-<loss>/) on the same toy data, the seed changing initialisation,
sampling and flips. Writes results/reproduced.json (the toy rows: means over the seeds, and the two
claims with their per-seed values and verdicts, ``shared.results``) and results/per_frequency_ap.png
(AP, APr, APc, APf of both losses, mean and std over the seeds). Not a test: `table.py
--write-readme` puts the numbers in the README and a test checks they agree.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from eql import train
from shared import config, results

HERE = Path(__file__).resolve().parent
KEYS = ("AP", "AP50", "APr", "APc", "APf")
ARMS = {"sigmoid": "sigmoid BCE", "eql": "EQL"}
COMMAND = "make eql-claims"


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("EQL claims on the toy data", add_help=add_help)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    p.add_argument("--output-dir", default=config.default_output_dir(), help="root of the run folders")
    p.add_argument("--results", default=str(HERE / "results"), help="where reproduced.json and the plot go")
    return p


def run_seed(seed: int, output_dir: str) -> dict:
    """{loss: {'bbox': box metrics (percent), 'random': the random-box baseline}} for one seed."""
    argv = ["--config", str(HERE / "configs" / "toy.yaml"), "--seed", str(seed), "--run-name", f"claims-seed{seed}",
            "--output-dir", output_dir, "--compare", *ARMS]
    runs = train.main(config.parse_args(train.get_args_parser(), argv))
    return {loss: {"bbox": m["bbox"], "random": m["baseline_random"]} for loss, (_, m) in runs.items()}


def plot(per_seed: list, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = ("AP", "APr", "APc", "APf")
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    x = np.arange(len(keys))
    for j, (loss, label) in enumerate(ARMS.items()):
        vals = np.asarray([[s[loss]["bbox"][k] for k in keys] for s in per_seed])
        ax.bar(x + (j - 0.5) * 0.38, vals.mean(0), 0.36, yerr=vals.std(0, ddof=1) if len(vals) > 1 else None,
               capsize=3, label=label)
    ax.set_xticks(x, ["all", "rare", "common", "frequent"])
    ax.set_ylabel("box AP (%)")
    ax.set_title(f"Toy LVIS-format data, {len(per_seed)} seeds", fontsize=10)
    ax.legend(frameon=False, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(args):
    per_seed = [run_seed(s, args.output_dir) for s in args.seeds]
    out = Path(args.results)
    rows = []
    for loss, label in ARMS.items():
        vals = {k: [s[loss]["bbox"][k] for s in per_seed] for k in KEYS}
        rows.append(results.reproduced_row("toy", f"{label} (ours)", {k: float(np.mean(v)) for k, v in vals.items()},
                                           command=COMMAND, config="configs/toy.yaml", seeds=args.seeds, data="toy",
                                           per_seed=vals))
    rnd = {k: [s["eql"]["random"][k] or 0.0 for s in per_seed] for k in KEYS}
    rows.append(results.reproduced_row("toy", "random boxes, 300 per image", {k: float(np.mean(v)) for k, v in rnd.items()},
                                       command=COMMAND, config="configs/toy.yaml", seeds=args.seeds, data="toy"))
    claims = [results.claim(f"eql_vs_sigmoid_{k}", f"EQL beats sigmoid BCE ({'rare classes' if k == 'APr' else 'all'})",
                            f"box {k}", {label: [s[loss]["bbox"][k] for s in per_seed] for loss, label in ARMS.items()},
                            "EQL", "sigmoid BCE", seeds=args.seeds, command=COMMAND, data="toy",
                            config="configs/toy.yaml",
                            note="same detector and schedule; only the classification loss differs")
              for k in ("AP", "APr")]
    results.update_reproduced(out / "reproduced.json", rows, claims)
    plot(per_seed, out / "per_frequency_ap.png")
    for c in claims:
        print(f"{c['claim']}: {c['difference']['mean']:+.2f} ± {c['difference']['std']:.2f} ({c['verdict']})")
    return claims


if __name__ == "__main__":
    main(get_args_parser().parse_args())
