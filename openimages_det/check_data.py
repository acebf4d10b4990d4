"""Check an Open Images tree and print what it holds as JSON (``make openimages_det-check``).

    python check_data.py --data-root /datasets/openimages --release challenge2019 [--splits train validation]
    python check_data.py            # the embedded toy data

Reads every file the training and evaluation read, with the same checks (a missing column, an unknown
LabelName, a coordinate outside [0, 1], a malformed hierarchy, a missing image stop with the file,
the line and the value; exit status 1), and reports per split: images, boxes, group-of boxes, invalid
(skipped) boxes, multi-label objects, image-level labels (positive / negative), classes with boxes;
and for the hierarchy: labels, depth, labels with several parents.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from openimages_det import build
from openimages_det.annotations import AnnotationError
from openimages_det.data import DataError, build_records, check_images, load_classes, load_split_tables, resolve_files
from openimages_det.hierarchy import HierarchyError, load_hierarchy


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("openimages_det check_data", add_help=add_help)
    build.add_data_args(p)
    p.add_argument("--splits", nargs="+", default=["train", "validation"], choices=["train", "validation", "test"])
    p.add_argument("--no-images", action="store_true", help="do not look for the image files")
    return p


def check(args) -> dict:
    build.ensure_toy(args)
    report = {"data_root": args.data_root, "release": args.release, "splits": {}}
    classes = hierarchy = None
    for split in args.splits:
        files = resolve_files(args, split)
        if classes is None:
            classes = load_classes(files)
            hierarchy = load_hierarchy(files["hierarchy"])
            outside = [c for c in classes if c not in hierarchy]
            report["classes"] = {"file": str(files["classes"]), "count": len(classes), "outside_hierarchy": len(outside)}
            report["hierarchy"] = {"file": str(files["hierarchy"]), "labels": len(hierarchy), "depth": hierarchy.depth(),
                                   "labels_with_several_parents": sum(len(p) > 1 for p in hierarchy.parents.values())}
        boxes, labels = load_split_tables(files, classes)
        rec = build_records(boxes, classes, hierarchy, args.concurrent_iou)
        sizes = np.diff(rec.ann_ptr)
        conf = labels["Confidence"].to_numpy()
        entry = {"boxes_file": str(files["boxes"]), "labels_file": str(files["labels"]),
                 "images_with_boxes": len(rec), "images_with_labels": int(labels["ImageID"].nunique()),
                 "boxes": len(boxes), "group_of_boxes": int((boxes["IsGroupOf"] == 1).sum()),
                 "invalid_boxes_skipped": rec.skipped_boxes, "objects": int(len(sizes)),
                 "multi_label_objects": int((sizes > 1).sum()),
                 "classes_with_boxes": int(boxes["LabelName"].nunique()),
                 "labels_positive": int((conf == 1).sum()), "labels_negative": int((conf == 0).sum())}
        if not args.no_images:
            ids = sorted(set(boxes["ImageID"]) | set(labels["ImageID"]))
            check_images(files["images"], ids, split)
            entry["images_checked"] = len(ids)
        report["splits"][split] = entry
    return report


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        report = check(args)
    except (AnnotationError, DataError, HierarchyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
