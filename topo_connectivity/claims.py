"""The paper's central comparison on the toy data, over 3 seeds -> results/reproduced.json.

    cd topo_connectivity && python claims.py [--seeds 0 1 2] [--arms learned residual ws complete] [--no-det]

Every arm trains the toy TopoNet of configs/toy.yaml with the same schedule (12 epochs, then 3 of
fine-tuning) and seed; only the wiring differs: `learned` (complete graph, L1 term, pruning),
`residual` (the same graph frozen at 1, i.e. a ResNet-style stage) and `ws` (a RandWire WS(4, 0.75)
graph with learned weights, a new graph per seed); `--arms` adds others (`complete`: learned
weights, no L1, no pruning; `chain`, `er`, `ba`). The learned network is never more expensive:
pruning only removes work. Claims recorded:
learned vs residual and learned vs the random wiring, top-1 on the toy validation set, each with
every arm's per-seed values and the verdict of the paired difference (shared.results). The toy
detection run (configs/toy_det.yaml, seed 0) adds the toy_det row unless --no-det.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from shared import config, results
from topo_connectivity import train as train_script
from topo_connectivity import train_det

HERE = Path(__file__).resolve().parent
LABELS = {"learned": "learned (L1 + pruning)", "residual": "residual (frozen at 1)", "ws": "random WS(4, 0.75)",
          "complete": "complete (learned, no L1)", "chain": "chain", "er": "random ER(0.2)", "ba": "random BA(5)"}


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("topo_connectivity claims", add_help=add_help, description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    p.add_argument("--arms", nargs="+", default=["learned", "residual", "ws"], help="wirings compared")
    p.add_argument("--no-det", action="store_true", help="skip the toy detection row")
    p.add_argument("--output-dir", default=config.default_output_dir(), help="root of the run folders")
    p.add_argument("--out", default=str(HERE / "results" / "reproduced.json"), help="reproduced.json to update")
    return p


def run_arm(wiring: str, seed: int, output_dir: str) -> dict:
    parser = train_script.get_args_parser()
    args = config.parse_args(parser, ["--config", str(HERE / "configs" / "toy.yaml"), "--wiring", wiring,
                                      "--seed", str(seed), "--output-dir", output_dir])
    run_dir, _ = train_script.main(args)
    return json.loads((run_dir / "results.json").read_text())


def main(args):
    runs = {arm: [run_arm(arm, s, args.output_dir) for s in args.seeds] for arm in args.arms}
    rows = []
    for arm, rs in runs.items():
        top1 = results.summarize([r["top1"] for r in rs])
        rows.append(results.reproduced_row(
            "toy", LABELS.get(arm, arm),
            {"top-1": top1["mean"], "top-1 std": top1["std"],
             "MAdds (M)": sum(r["madds"] for r in rs) / len(rs) / 1e6,
             "edges kept": sum(r["edges_kept"] for r in rs) / len(rs),
             "edge sparsity": sum(r["edge_sparsity"] for r in rs) / len(rs)},
            command="make topo_connectivity-claims", data="toy", config=f"configs/toy.yaml --wiring {arm}",
            seeds=args.seeds, per_seed_top1=top1["values"]))
    arms = {LABELS.get(a, a): [r["top1"] for r in rs] for a, rs in runs.items()}
    claims = []
    learned = LABELS["learned"]
    for base, cid, text in (("residual", "learned_vs_residual", "Learned connectivity beats the residual wiring "
                             "at no more MAdds (toy)"),
                            ("ws", "learned_vs_random", "Learned connectivity beats a random (WS) wiring at no "
                             "more MAdds (toy)")):
        if "learned" in runs and base in runs:
            claims.append(results.claim(cid, text, "top-1", arms, learned, LABELS[base], seeds=args.seeds,
                                        command="make topo_connectivity-claims", data="toy",
                                        config="configs/toy.yaml"))
    if not args.no_det:
        det_args = config.parse_args(train_det.get_args_parser(),
                                     ["--config", str(HERE / "configs" / "toy_det.yaml"), "--output-dir", args.output_dir])
        _, stats = train_det.main(det_args)
        rows.append(results.reproduced_row("toy_det", "TopoNet toy backbone, learned wiring (from scratch)",
                                           {k: stats[k] for k in ("AP", "AP50", "AP75")},
                                           command="make topo_connectivity-det", data="toy", config="configs/toy_det.yaml"))
    results.update_reproduced(args.out, rows=rows, claims=claims)
    for c in claims:
        d = c["difference"]
        print(f"{c['id']}: {c['verdict']} (difference {d['mean']:+.2f} ± {d['std']:.2f} top-1 over {len(args.seeds)} seeds)")
    print(f"updated {args.out}")


if __name__ == "__main__":
    main(get_args_parser().parse_args())
