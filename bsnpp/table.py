"""Print the paper's proposal tables beside our runs, in Markdown.

The paper's numbers come from `results/paper.json` (unverified ones are marked with a dagger);
ours from every `results.json` under `--runs` (default: runs/bsnpp) and from the reproduced rows
recorded in `results/reproduced.json` (command, hardware, versions).

    python table.py [--runs ../runs/bsnpp] [--dataset anet|thumos14]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS = {"anet": ["AR@1", "AR@5", "AR@10", "AR@100", "AUC"],
           "thumos14": ["AR@50", "AR@100", "AR@200", "AR@500", "AR@1000"]}
SECTIONS = {"anet": "anet_val_proposals", "thumos14": "thumos14_proposals"}


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("bsnpp table", add_help=add_help)
    p.add_argument("--runs", default=str(HERE.parent / "runs" / "bsnpp"), help="folder searched for results.json")
    p.add_argument("--dataset", default="anet", choices=sorted(COLUMNS), help="which table")
    return p


def _fmt(v):
    return "—" if v is None else f"{v:.2f}"


def collect_runs(root: Path, dataset: str) -> list[dict]:
    rows = []
    for path in sorted(root.glob("*/*/results.json")):  # <config>/<timestamp>/: training runs
        try:
            res = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            print(f"skipping {path}: {e}")
            continue
        if res.get("dataset", "anet") != dataset:
            continue
        rows.append({"method": f"ours: {res.get('config', path.parent.parent.name)} ({path.parent.name})",
                     **res.get("metrics", {})})
    rec = HERE / "results" / "reproduced.json"
    if rec.is_file():
        for r in json.loads(rec.read_text()).get(dataset, []):
            rows.append({"method": f"ours: {r['name']}", **r["metrics"]})
    return rows


def render(dataset: str, runs_root: Path) -> str:
    paper = json.loads((HERE / "results" / "paper.json").read_text())[SECTIONS[dataset]]
    cols = COLUMNS[dataset]
    lines = ["| method | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for r in paper["rows"]:
        mark = "" if r.get("verified", True) else " †"
        lines.append(f"| {r['method']}{mark} | " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    for r in collect_runs(runs_root, dataset):
        lines.append(f"| {r['method']} | " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    lines.append("")
    lines.append("† unverified: quoted from memory in the spec, check the BSN++ PDF before citing.")
    return "\n".join(lines)


def main(args):
    text = render(args.dataset, Path(args.runs))
    print(text)
    return text


if __name__ == "__main__":
    main(get_args_parser().parse_args())
