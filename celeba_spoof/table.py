"""Print the paper's intra-dataset table beside our runs, in Markdown.

The paper's numbers come from ``results/paper.json`` (unverified ones are marked with a dagger);
ours from every training run's ``results.json`` under ``--runs`` (default: runs/celeba_spoof),
one row per threshold choice (from validation, from test), and from the reproduced rows recorded
in ``results/reproduced.json`` when it exists.

    python table.py [--runs ../runs/celeba_spoof] [--protocol intra_test]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS = ("TPR@FPR=1%", "TPR@FPR=0.5%", "TPR@FPR=0.1%", "AUC", "EER", "APCER", "BPCER", "ACER")


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("celeba_spoof table", add_help=add_help)
    p.add_argument("--runs", default=str(HERE.parent / "runs" / "celeba_spoof"), help="folder searched for <config>/<timestamp>/results.json")
    p.add_argument("--protocol", default="intra_test", help="which protocol's runs to list")
    return p


def _fmt(c, v):
    if v is None:
        return "—"
    return f"{v:.4f}" if c == "AUC" else f"{v:.2f}"


def collect_runs(root: Path, protocol: str) -> list[dict]:
    rows = []
    for path in sorted(root.glob("*/*/results.json")):  # <config>-<variant>/<timestamp>/: training runs
        try:
            res = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            print(f"skipping {path}: {e}")
            continue
        if res.get("protocol", "intra_test") != protocol:
            continue
        toy = " [toy data]" if res.get("toy") else ""
        for key in ("test@val", "test@test"):
            m = res.get("metrics", {}).get(key)
            if m:
                rows.append({"method": f"ours: {res.get('variant_name', '?')}, {path.parent.parent.name} "
                                       f"({path.parent.name}){toy}", **m, "thr_from": key.split("@")[1]})
    rec = HERE / "results" / "reproduced.json"
    if rec.is_file():
        for r in json.loads(rec.read_text()).get(protocol, []):
            rows.append({"method": f"ours: {r['name']}", **r["metrics"], "thr_from": r.get("threshold_from", "val")})
    return rows


def render(runs_root: Path, protocol: str = "intra_test") -> str:
    paper = json.loads((HERE / "results" / "paper.json").read_text())["intra_dataset"]
    lines = ["| method | threshold | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 2) + "|"]
    if protocol == "intra_test":
        for r in paper["rows"]:
            mark = "" if r.get("verified", True) else " †"
            lines.append(f"| {r['method']}{mark} | — | " + " | ".join(_fmt(c, r.get(c)) for c in COLUMNS) + " |")
    for r in collect_runs(runs_root, protocol):
        lines.append(f"| {r['method']} | {r['thr_from']} | " + " | ".join(_fmt(c, r.get(c)) for c in COLUMNS) + " |")
    lines += ["", "† quoted by our spec sheet from the paper's table; not checked against the PDF.",
              "threshold: 'val' = CDCN's EER point on the held-out validation subjects, applied to test; "
              "'test' = the EER point of the test scores. TPR@FPR, AUC and EER do not depend on it. "
              "Toy-data rows measure the pipeline, not the method."]
    return "\n".join(lines)


def main(args):
    text = render(Path(args.runs), args.protocol)
    print(text)
    return text


if __name__ == "__main__":
    main(get_args_parser().parse_args())
