"""Check a CelebA-Spoof folder and print one JSON report; exit non-zero when it is unusable.

    python check_data.py --data-root /datasets/CelebA_Spoof [--protocol intra_test] [--fast]

Counts (over the protocol's train and test lists, and over the images on disk): ``images`` (on
disk under Data/), ``labelled``, ``live``, ``spoof``, ``per_spoof_type``, ``per_illumination``,
``per_environment``, ``empty_bbox``, ``malformed_bbox``, ``negative_bbox`` (a box with a negative
value), ``degenerate_bbox`` (the official scaling gives an empty crop: the whole image is used;
needs the image sizes, skipped with --fast), ``missing_bbox_file``, ``missing_image`` (listed, not
on disk), ``unlabeled`` (on disk, in no list: the release holds back ~64k challenge images),
``bad_label`` (not 44 valid integers), ``depth_maps``, ``reflect_maps``, per-split details and the
first few names of every problem. Exit status 0: usable; 2: unusable, with ``"error"`` saying why
(no Data/ or metas/, a label file missing or not JSON, no listed image on disk, one class absent).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from celeba_spoof.data import collect, image_size_report, scan_images
from celeba_spoof.labels import LabelError, find_label_file, load_label_file

SUMMED = ("listed", "live", "spoof", "missing_image", "bad_label", "empty_bbox", "malformed_bbox",
          "negative_bbox", "missing_bbox_file", "depth_maps", "reflect_maps")


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("CelebA-Spoof data check", add_help=add_help)
    p.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1] / "data" / "toy" / "celeba_spoof"),
                   help="the CelebA_Spoof folder holding Data/ and metas/ (default: the toy data, make celeba_spoof-data)")
    p.add_argument("--protocol", default="intra_test", help="label lists under metas/ (intra_test, protocol1, protocol2/<folder>)")
    p.add_argument("--maps-root", default="", help="folder mirroring Data/ with the depth / reflection maps")
    p.add_argument("--negative-bbox", default="clamp", choices=["clamp", "whole"], help="as in training")
    p.add_argument("--fast", action="store_true", help="skip opening image headers (no degenerate_bbox / unreadable_image)")
    return p


def check(args) -> tuple[dict, str | None]:
    """(report, error or None)."""
    root = Path(args.data_root)
    rep = {"data_root": str(root), "protocol": args.protocol}
    if not root.is_dir():
        return rep, f"{root}: no such folder"
    for sub in ("Data", "metas"):
        if not (root / sub).is_dir():
            return rep, f"{root}: no {sub}/ folder (point --data-root at the CelebA_Spoof folder of the release)"
    on_disk = scan_images(root)
    rep["images"] = len(on_disk)
    listed, splits = set(), {}
    totals = Counter()
    per = {"per_spoof_type": Counter(), "per_illumination": Counter(), "per_environment": Counter()}
    examples = {}
    for split in ("train", "test"):
        try:
            path = find_label_file(root, args.protocol, split)
            labels, bad = load_label_file(path)
        except LabelError as e:
            return rep, str(e)
        samples, r = collect(root, labels, bad, Path(args.maps_root) if args.maps_root else None)
        d = r.to_dict()
        if not args.fast:
            extra = image_size_report(samples, args.negative_bbox)
            d.update({k: v for k, v in extra.items() if k != "examples"})
            d["examples"].update({k: v for k, v in extra["examples"].items() if v})
        listed.update(labels)
        listed.update(rel for rel, _ in bad)
        splits[split] = {"file": str(path), **d}
        for k in SUMMED + ("degenerate_bbox", "unreadable_image"):
            totals[k] += d.get(k, 0)
        for k in per:
            per[k].update(d[k])
        for k, v in d["examples"].items():
            examples.setdefault(k, []).extend(v[: 5 - len(examples.get(k, []))])
    unlabeled = sorted(set(on_disk) - listed)
    rep.update(labelled=totals["listed"] - totals["bad_label"], **{k: totals[k] for k in SUMMED if k != "listed"})
    if not args.fast:
        rep.update(degenerate_bbox=totals["degenerate_bbox"], unreadable_image=totals["unreadable_image"])
    rep["unlabeled"] = len(unlabeled)
    rep.update({k: dict(v) for k, v in per.items()})
    if unlabeled:
        examples["unlabeled"] = unlabeled[:5]
    rep["examples"] = examples
    rep["splits"] = splits
    for split, d in splits.items():
        if d["images"] == 0:
            return rep, f"{d['file']}: none of its {d['listed']} images is on disk under {root}"
        if d["live"] == 0 or d["spoof"] == 0:
            return rep, f"{d['file']}: the {split} list needs live and spoof images ({d['live']} live, {d['spoof']} spoof)"
    return rep, None


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    rep, error = check(args)
    rep["usable"] = error is None
    if error:
        rep["error"] = error
    print(json.dumps(rep, indent=1))
    if error:
        print(f"check_data: unusable: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
