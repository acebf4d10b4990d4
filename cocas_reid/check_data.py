"""Check a COCAS+ or Market-1501 tree and print what the loaders see, as JSON.

    python check_data.py --dataset cocas|market1501 --data-root D [--train-list F] [--variant raw]
                         [--dump F.json]
    python check_data.py          # the embedded toy data (written first if absent; make cocas_reid-check)

Prints `train_images`, `train_ids`, `query_images`, `query_ids`, `gallery_images`, `gallery_ids`
(distractors, pid 0, not counted), `distractors`, `junk_skipped`, `cameras` (distinct cameras),
`missing_templates` (and the first few of them). `--dump` writes the kept items as a JSON list of
{split, file, pid, camid}. A malformed list or name fails with the file and line; missing
templates are counted, and make the exit status 1.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cocas_reid.data import DataError, load_dataset
from cocas_reid.toy import DEFAULT_OUT, make_toy_dataset


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("cocas_reid check_data", add_help=add_help)
    p.add_argument("--dataset", default="cocas", choices=["cocas", "market1501"], help="layout of --data-root")
    p.add_argument("--data-root", default="", help="dataset root; empty = the embedded COCAS+ toy data (written on first use)")
    p.add_argument("--train-list", default="", help="COCAS+ training list, relative to the root unless absolute (default train.txt)")
    p.add_argument("--variant", default="raw", choices=["raw", "desensitized"], help="COCAS image variant")
    p.add_argument("--dump", default="", help="write the kept items here (JSON)")
    return p


def report(data, missing: list) -> dict:
    s = data.splits
    cams = np.unique(np.concatenate([x.camids for x in s.values()]))
    return {"dataset": data.name, "root": str(data.root), "variant": data.variant,
            "train_images": len(s["train"]), "train_ids": s["train"].num_ids,
            "query_images": len(s["query"]), "query_ids": s["query"].num_ids,
            "gallery_images": len(s["gallery"]), "gallery_ids": int(np.unique(s["gallery"].pids[s["gallery"].pids != 0]).size),
            "distractors": int(data.report.get("distractors", 0)), "junk_skipped": int(data.report.get("junk_skipped", 0)),
            "cameras": int((cams >= 0).sum()), "missing_templates": len(missing),
            **({"missing_template_examples": missing[:10]} if missing else {}),
            **({"ignored_files": data.report["ignored_files"]} if data.report.get("ignored_files") else {})}


def main(args) -> dict:
    missing = []
    root = args.data_root
    if not root:
        if args.dataset != "cocas":
            print(f"error: --dataset {args.dataset} needs --data-root (the toy data is COCAS+ only)", file=sys.stderr)
            raise SystemExit(2)
        root = make_toy_dataset(DEFAULT_OUT)
    try:
        data = load_dataset(args.dataset, root, args.variant, args.train_list, missing_templates=missing)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    rep = report(data, missing)
    print(json.dumps(rep, indent=2))
    if args.dump:
        items = [{"split": name, "file": f, "pid": int(p), "camid": int(c)}
                 for name, s in data.splits.items() for f, p, c in zip(s.files, s.pids, s.camids)]
        Path(args.dump).write_text(json.dumps(items))
    if missing:
        raise SystemExit(1)
    return rep


if __name__ == "__main__":
    main(get_args_parser().parse_args())
