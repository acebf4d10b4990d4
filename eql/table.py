"""Print the paper's LVIS tables beside our runs, in Markdown.

The official numbers come from ``results/paper.json`` (unverified ones marked with a dagger); ours
from every ``results.json`` of a training run under ``--runs`` (default ``<repo>/runs/eql``), and
from the rows recorded in ``results/reproduced.json`` (command, hardware, versions) when present.

    python table.py [--runs ../runs/eql] [--dataset lvis_v0.5|lvis_v1|toy]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECTIONS = {"lvis_v0.5": "lvis_v0.5_val", "lvis_v1": "lvis_v1_val"}
COLUMNS = {"lvis_v0.5": ["AP", "APr", "APc", "APf", "AP_box"], "lvis_v1": ["AP", "APr", "APc", "APf", "AP_box"],
           "toy": ["AP_box", "AP50_box", "APr_box", "APc_box", "APf_box"]}


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("eql table", add_help=add_help)
    p.add_argument("--runs", default=str(HERE.parent / "runs" / "eql"), help="folder searched for results.json")
    p.add_argument("--dataset", default="all", choices=["all", *COLUMNS], help="which table")
    return p


def _fmt(v):
    return "—" if v is None else f"{v:.2f}"


def _row_values(metrics: dict) -> dict:
    """Mask AP (segm) as AP/APr/APc/APf when there is one, box AP as *_box."""
    out = {}
    box, segm = metrics.get("bbox", {}), metrics.get("segm")
    for k in ("AP", "AP50", "APr", "APc", "APf"):
        out[f"{k}_box"] = box.get(k)
        out[k] = segm.get(k) if segm else None
    return out


def collect_runs(root: Path, dataset: str) -> list[dict]:
    rows = []
    for path in sorted(root.glob("*/*/results.json")):  # <run name>/<timestamp>/: training runs only
        try:
            res = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            print(f"skipping {path}: {e}")
            continue
        if res.get("dataset") != dataset:
            continue
        name = res.get("run_name") or res.get("config", path.parent.parent.name)
        rows.append({"method": f"ours: {name} ({res.get('loss')}, {res.get('iters')} it, {path.parent.name})",
                     **_row_values(res.get("metrics", {}))})
    rec = HERE / "results" / "reproduced.json"
    if rec.is_file():
        for r in json.loads(rec.read_text()).get(dataset, []):
            rows.append({"method": f"ours: {r['name']}", **r["metrics"]})
    return rows


def render(dataset: str, runs_root: Path) -> str:
    cols = COLUMNS[dataset]
    lines = [f"### {dataset}", "", "| method | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    notes = []
    if dataset in SECTIONS:
        sec = json.loads((HERE / "results" / "paper.json").read_text())[SECTIONS[dataset]]
        notes.append(sec["title"])
        for r in sec["rows"]:
            mark = "" if r.get("verified", True) else " †"
            lines.append(f"| {r['method']}{mark} | " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    for r in collect_runs(runs_root, dataset):
        lines.append(f"| {r['method']} | " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    lines.append("")
    if dataset in SECTIONS:
        lines.append(f"{notes[0]}. AP..APf: mask AP; AP_box: box AP. † unverified (paper table quoted in the "
                     f"spec sheet, not checked against the PDF).")
    else:
        lines.append("Toy data (eql/toy.py): box AP of the validation split, LVIS protocol; not comparable with LVIS.")
    return "\n".join(lines)


def main(args):
    datasets = list(COLUMNS) if args.dataset == "all" else [args.dataset]
    text = "\n\n".join(render(d, Path(args.runs)) for d in datasets)
    print(text)
    return text


if __name__ == "__main__":
    main(get_args_parser().parse_args())
