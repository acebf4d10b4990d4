"""Print DMCP's ImageNet table (official README and paper numbers beside ours) in Markdown, list
the toy runs, and draw the accuracy-MAdds plot.

The paper's numbers come from `results/paper.json` (each with its source; numbers not checked
against the paper itself are marked with a dagger); ours from every `results.json` under
`--runs` (prune runs with --then-retrain, and train.py runs `<config>-retrain`).

    python table.py [--runs ../runs/dmcp] [--plot ../runs/dmcp/accuracy_mflops.png]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("dmcp table", add_help=add_help)
    p.add_argument("--runs", default=str(HERE.parent / "runs" / "dmcp"), help="folder searched for results.json")
    p.add_argument("--plot", default="", help="accuracy-MAdds plot (PNG); default <runs>/accuracy_mflops.png")
    return p


def _fmt(v, digits=1):
    return "—" if v is None else f"{v:.{digits}f}"


def collect_runs(root: Path) -> dict[str, dict]:
    """The newest retrained result per config name: {config: {mflops, top1, top5, run}}."""
    best: dict[str, tuple[float, dict]] = {}
    for path in sorted(root.glob("*/*/results.json")):
        try:
            res = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            print(f"skipping {path}: {e}")
            continue
        if res.get("top1") is None:
            continue
        name = path.parent.parent.name.removesuffix("-retrain")
        row = {"mflops": res.get("mflops"), "top1": res["top1"], "top5": res.get("top5"),
               "target": res.get("target_mflops"), "run": f"{path.parent.parent.name}/{path.parent.name}",
               "model": res.get("model")}
        stamp = path.stat().st_mtime
        if name not in best or stamp > best[name][0]:
            best[name] = (stamp, row)
    return {k: v for k, (_, v) in best.items()}


def render(runs_root: Path) -> str:
    paper = json.loads((HERE / "results" / "paper.json").read_text())
    ours = collect_runs(runs_root)
    lines = ["| model | target FLOPs | official README top-1 | paper top-1 | ours: MFLOPs | ours: top-1 | ours: run |",
             "|---|---|---|---|---|---|---|"]
    for r in paper["rows"]:
        o = ours.get(r["config"], {})
        mark = "" if r.get("paper_verified", True) or r.get("paper") is None else " †"
        lines.append(f"| {r['model']} | {r['target_mflops']}M | {_fmt(r['official_readme'])} | "
                     f"{_fmt(r.get('paper'))}{mark} | {_fmt(o.get('mflops'), 2)} | {_fmt(o.get('top1'), 2)} | "
                     f"{o.get('run', 'not run')} |")
    lines.append("")
    lines.append("† quoted from third-party tables, not checked against the paper's PDF. "
                 "Our rows need ImageNet (make dmcp-prune DATA=... CONFIG=configs/<row>.yaml ARGS=--then-retrain).")
    toys = {k: v for k, v in ours.items() if k.startswith("toy") or k not in {r["config"] for r in paper["rows"]}}
    if toys:
        lines += ["", "| toy run (embedded data) | target MFLOPs | MFLOPs | top-1 | top-5 | run |", "|---|---|---|---|---|---|"]
        for k, v in sorted(toys.items()):
            lines.append(f"| {k} | {_fmt(v.get('target'), 2)} | {_fmt(v.get('mflops'), 3)} | {_fmt(v['top1'], 2)} | "
                         f"{_fmt(v.get('top5'), 2)} | {v['run']} |")
    return "\n".join(lines)


def plot(runs_root: Path, out: Path) -> Path | None:
    """Top-1 against MFLOPs: official README points per model, peers, and our ImageNet runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paper = json.loads((HERE / "results" / "paper.json").read_text())
    ours = collect_runs(runs_root)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    groups: dict[str, list] = {}
    for r in paper["rows"]:
        groups.setdefault(r["model"], []).append((r["target_mflops"], r["official_readme"]))
    for r in paper.get("official_readme_other_rows", []):
        groups.setdefault(r["model"], []).append((r["target_mflops"], r["top1"]))
    for model, pts in groups.items():
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"DMCP {model} (official README)")
    for r in paper.get("peers", []):
        ax.plot(r["mflops"], r["top1"], "x", color="gray")
        ax.annotate(r["method"], (r["mflops"], r["top1"]), fontsize=6, color="gray")
    rows = {r["config"] for r in paper["rows"]}
    mine = [(v["mflops"], v["top1"], k) for k, v in ours.items() if k in rows and v.get("mflops")]
    if mine:
        ax.plot([m[0] for m in mine], [m[1] for m in mine], "*", ms=12, color="red", label="ours")
    ax.set_xscale("log")
    ax.set_xlabel("MFLOPs (multiply-adds, 224x224)")
    ax.set_ylabel("ImageNet top-1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(args):
    root = Path(args.runs)
    text = render(root)
    print(text)
    out = plot(root, Path(args.plot) if args.plot else root / "accuracy_mflops.png")
    print(f"\nplot: {out}")
    return text


if __name__ == "__main__":
    main(get_args_parser().parse_args())
