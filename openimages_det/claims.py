"""The paper's central comparison on the toy data over seeds -> results/reproduced.json (``make openimages_det-claims``).

    cd openimages_det && python claims.py [--seeds 0 1 2] [--output-dir DIR]

For each seed, trains the toy config's three variants with the same schedule (``train.py --variants
softmax concurrent full --seed S``) and records:

* ``concurrent_vs_softmax``: concurrent softmax vs softmax, both with natural sampling, on
  ``mAP_multilabel`` (the classes whose objects carry several labels);
* ``soft_balance_vs_natural``: soft-balance sampling with the hybrid scheduler vs natural sampling, both
  with the concurrent softmax (``full`` vs ``concurrent``), on ``mAP_rare``;
* ``full_vs_softmax``: the whole method vs the softmax baseline on ``mAP`` (the paper's +3.34);

each with the per-seed values, the paired difference and its verdict (shared.results), one toy table row
per variant (the mean over seeds) plus the random-box baseline, and ``results/per_class_ap.png`` (each
class's AP, mean over seeds, classes from the most to the least frequent in training). Not a test: it
takes a while.
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from openimages_det import train
from shared import config, results

HERE = Path(__file__).resolve().parent
ARMS = ("softmax", "concurrent", "full")
KEYS = ("mAP", "mAP_rare", "mAP_multilabel")
COMMAND = "make openimages_det-claims"
CLAIMS = (
    ("concurrent_vs_softmax", "concurrent softmax beats softmax on classes with multi-label objects (natural sampling)",
     "mAP_multilabel", "concurrent", "softmax"),
    ("soft_balance_vs_natural", "soft-balance sampling with the hybrid scheduler beats natural sampling on rare "
     "classes (concurrent softmax)", "mAP_rare", "full", "concurrent"),
    ("full_vs_softmax", "the whole method beats the softmax baseline", "mAP", "full", "softmax"),
)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--output-dir", default=config.default_output_dir(), help="root of the run folders")
    p.add_argument("--out", default=str(HERE / "results" / "reproduced.json"), help="reproduced.json to update")
    args = p.parse_args(argv)
    cfg = HERE / "configs" / "toy.yaml"
    values = {arm: {k: [] for k in KEYS} for arm in ARMS}
    per_class = {arm: [] for arm in ARMS}
    baseline = {k: [] for k in KEYS}
    for seed in args.seeds:
        targs = config.parse_args(train.get_args_parser(), ["--config", str(cfg), "--seed", str(seed),
                                                             "--output-dir", args.output_dir, "--variants", *ARMS])
        runs = train.main(targs)
        for arm in ARMS:
            res = runs[arm][1]
            for k in KEYS:
                values[arm][k].append(res[k])
            per_class[arm].append(res["per_class_AP"])
        for k in KEYS:
            baseline[k].append(runs[ARMS[0]][1]["baseline_random"][k])
    common = dict(seeds=args.seeds, command=COMMAND, data="toy", config="configs/toy.yaml")
    claims = [results.claim(cid, text, metric, {method: values[method][metric], baseline_arm: values[baseline_arm][metric]},
                            method, baseline_arm, **common)
              for cid, text, metric, method, baseline_arm in CLAIMS]
    rows = [results.reproduced_row("toy", f"{arm} (ours)", {k: statistics.fmean(values[arm][k]) for k in KEYS},
                                   per_seed=values[arm], **common) for arm in ARMS]
    rows.append(results.reproduced_row("toy", "random boxes (100 per image)", {k: statistics.fmean(baseline[k]) for k in KEYS},
                                       **common))
    results.update_reproduced(args.out, rows, claims)
    first = runs[ARMS[0]][0]
    plot_per_class_ap(per_class, first / "results.json", HERE / "results" / "per_class_ap.png")
    print(results.render_markdown(results.load_paper(HERE / "results" / "paper.json"), results.load_reproduced(args.out)))
    return {"claims": claims, "rows": rows}


def plot_per_class_ap(per_class: dict, any_results, out: Path) -> Path:
    """Bars of each class's AP (mean over seeds) per arm, classes ordered by training images (most first)."""
    import json

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    res = json.loads(Path(any_results).read_text())
    ckpt = torch.load(Path(any_results).parent / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    names, counts = ckpt["class_names"], ckpt["stats"]["image_count"]
    order = sorted(range(len(names)), key=lambda i: -counts[i])
    fig, ax = plt.subplots(figsize=(11, 3.8))
    width = 0.8 / len(per_class)
    for k, (arm, runs) in enumerate(per_class.items()):
        means = [statistics.fmean(r[names[i]] for r in runs if r[names[i]] is not None) for i in order]
        ax.bar([i + (k - (len(per_class) - 1) / 2) * width for i in range(len(order))], means, width, label=arm)
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([f"{names[i].split('/')[-1].removeprefix('t_')}\n{counts[i]}" for i in order], fontsize=7)
    ax.set_ylabel("AP (%)")
    ax.set_title(f"Per-class AP on the toy validation split, mean over {len(next(iter(per_class.values())))} seeds "
                 f"(class and training images; rare: {', '.join(c.split('/')[-1].removeprefix('t_') for c in res.get('rare_classes', []))})",
                 fontsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


if __name__ == "__main__":
    main()
