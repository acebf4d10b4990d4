"""The paper's central comparison on the toy data: CDGC against the same network without it
(``--no-cdgc``), same schedule, seeds 0, 1, 2 -> results/reproduced.json (``make cdgcnet-claims``).

    python claims.py [--seeds 0 1 2] [--config configs/toy.yaml] [--output-dir DIR]

Each seed trains both arms with `train.py --compare cdgc plain --seed S --resume auto` in its own
folder (``<output-dir>/claims/seed<S>/cdgcnet/toy-{cdgc,plain}/<timestamp>/``), so an interrupted
``make cdgcnet-claims`` continues where it stopped, a finished arm is only re-validated, and the
seeds can be trained in parallel beforehand with the same `train.py` command. The claim records
the validation mIoU per seed, the paired difference and its verdict; the table rows hold the means
(with the majority-class baseline); results/per_class_iou_toy.png shows both arms' IoU per class
(mean over the seeds, bars from the lowest to the highest seed). Not a test: it takes a while (2 x 3 toy trainings).
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from cdgcnet import train
from shared import config, results

HERE = Path(__file__).resolve().parent


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("cdgcnet claims", add_help=add_help)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    p.add_argument("--config", default=str(HERE / "configs" / "toy.yaml"), help="the toy config")
    p.add_argument("--output-dir", default=config.default_output_dir(), help="root of the run folders")
    p.add_argument("--out", default=str(HERE / "results" / "reproduced.json"), help="reproduced.json to update")
    return p


def plot(per_class: dict, path: Path) -> None:
    """Grouped bars: per class, each arm's mean IoU over the seeds with a min-max range."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    classes = [c for c in next(iter(per_class.values()))[0] if all(
        r[c] is not None for runs in per_class.values() for r in runs)]
    x = np.arange(len(classes))
    fig, ax = plt.subplots(figsize=(6, 3), dpi=100)
    for i, (label, runs) in enumerate(per_class.items()):
        v = np.array([[r[c] for c in classes] for r in runs])
        mean = v.mean(0)
        ax.bar(x + (i - 0.5) * 0.4, mean, 0.4, label=label,
               yerr=np.stack([mean - v.min(0), v.max(0) - mean]), capsize=2)
    ax.set_xticks(x, classes, rotation=30, ha="right")
    ax.set_ylabel("val IoU (%)")
    ax.set_title(f"toy: IoU per class, {len(next(iter(per_class.values())))} seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(args):
    arms = {"cdgc": [], "plain": []}
    per_class = {"CDGC": [], "no CDGC": []}
    base = []
    for seed in args.seeds:
        out = str(Path(args.output_dir) / "claims" / f"seed{seed}")
        targs = config.parse_args(train.get_args_parser(), ["--config", args.config, "--seed", str(seed),
                                                            "--output-dir", out, "--resume", "auto",
                                                            "--compare", "cdgc", "plain"])
        runs = train.main(targs)
        for arm, label in (("cdgc", "CDGC"), ("plain", "no CDGC")):
            arms[arm].append(runs[arm][1]["miou"])
            per_class[label].append(runs[arm][1]["iou"])
        base.append(runs["cdgc"][1]["baseline_majority_miou"])
    cfg = str(Path(args.config).relative_to(HERE)) if Path(args.config).is_relative_to(HERE) else args.config
    cmd = "make cdgcnet-claims"
    claim = results.claim(
        "cdgc_vs_plain", "CDGC refines the coarse features: the full network beats the same network without the "
        "class-wise graph (--no-cdgc)", "mIoU", {"CDGC": arms["cdgc"], "no CDGC": arms["plain"]}, "CDGC", "no CDGC",
        seeds=args.seeds, command=cmd, data="toy", config=cfg,
        note="toy Cityscapes tree (cdgcnet/toy.py), tiny backbone, val mIoU in percent")
    rows = [results.reproduced_row("toy", name, {"mIoU": statistics.mean(v)}, command=cmd, data="toy", config=cfg,
                                   seeds=args.seeds) for name, v in (("CDGC (ours)", arms["cdgc"]),
                                                                     ("no CDGC (ours)", arms["plain"]),
                                                                     ("majority class", base))]
    results.update_reproduced(args.out, rows=rows, claims=[claim])
    plot(per_class, Path(args.out).parent / "per_class_iou_toy.png")
    print(f"CDGC {arms['cdgc']}  no CDGC {arms['plain']}  -> {claim['verdict']} "
          f"({claim['difference']['mean']:+.2f} ± {claim['difference']['std']:.2f}); {args.out}")
    return claim


if __name__ == "__main__":
    main(get_args_parser().parse_args())
