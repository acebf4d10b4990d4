"""The localization table: the report's and the literature's numbers beside our pipeline runs.

    python table.py [--runs <repo>/runs/actnet_challenge]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEYS = ["mAP@0.5", "mAP@0.75", "mAP@0.95", "mAP"]


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("actnet_challenge table", add_help=add_help)
    p.add_argument("--runs", default=str(HERE.parent / "runs" / "actnet_challenge"), help="pipeline runs")
    return p


def _fmt(v):
    return "—" if v is None else f"{v:.2f}"


def render(runs_root: Path) -> str:
    paper = json.loads((HERE / "results" / "paper.json").read_text())["rows"]
    lines = ["| method | split | mAP@0.5 | mAP@0.75 | mAP@0.95 | average mAP | proposal AUC |", "|---" * 7 + "|"]
    for r in paper:
        mark = "" if r.get("verified", True) else " †"
        lines.append(f"| {r['method']}{mark} | {r['split']} | " + " | ".join(_fmt(r.get(k)) for k in KEYS) + " | — |")
    for path in sorted(runs_root.glob("*/*/results.json")):
        res = json.loads(path.read_text())
        auc = next((m.get("AUC") for n, m in res.get("proposals", {}).items() if n.startswith("fused")), None)
        for name, m in res.get("detections", {}).items():
            lines.append(f"| ours: {res.get('config', '?')} {path.parent.name}, {name} | validation | "
                         + " | ".join(_fmt(m.get(k)) for k in KEYS) + f" | {_fmt(auc)} |")
    lines += ["", "† unverified (quoted from memory in the spec sheet)."]
    return "\n".join(lines)


def main(args):
    text = render(Path(args.runs))
    print(text)
    return text


if __name__ == "__main__":
    main(get_args_parser().parse_args())
