"""The pipeline's arguments (one parser for train.py, train_classifier.py and eval.py, so that
every config loads in each), its data and the ground truth it is scored on.

Hyper-parameters live here as argparse defaults with help=; a YAML in configs/ only changes
defaults.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from shared import config
from shared.formats.activitynet import CsvFeatureFolder, Hdf5FeatureFile, load_json

logger = logging.getLogger("actnet_challenge")
HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
TOY_CONFIG = HERE / "configs" / "toy.yaml"  # the toy default: no --config and no --data-root
TOY_DATA = REPO_ROOT / "data" / "toy" / "bsnpp"  # bsnpp's toy data (written by bsnpp/toy.py)


def get_args_parser(prog: str, add_help: bool = True, train: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog, add_help=add_help)
    config.add_runtime_args(p, toy_config=TOY_CONFIG, train=train)
    add_data_args(p)
    add_ensemble_args(p)
    add_classifier_args(p)
    add_detection_args(p)
    return p


def add_data_args(p):
    g = p.add_argument_group("data")
    g.add_argument("--data-root", default="", help="dataset root; empty = bsnpp's toy data")
    g.add_argument("--annotations", default="activity_net.v1-3.min.json", help="ActivityNet-1.3 ground truth under --data-root")
    g.add_argument("--features", default="csv_mean_100", help="feature folder or .h5 file under --data-root")
    g.add_argument("--feature-prefix", default="v_", help="CSV file-name prefix")
    g.add_argument("--train-subset", default="training", help="subset to train the classifier on")
    g.add_argument("--val-subset", default="validation", help="subset evaluated")
    g.add_argument("--full-gt", action=argparse.BooleanOptionalAction, default=False,
                   help="score on every video of the evaluated subset (videos without features count as misses); "
                        "default: only those with features, the videos bsnpp evaluates (BSN/BMN's protocol)")


def add_ensemble_args(p):
    g = p.add_argument_group("proposals and ensemble")
    g.add_argument("--proposals", nargs="*", default=[], help="proposal submission files (empty on toy data: bsnpp runs)")
    g.add_argument("--bsnpp-configs", nargs="+", default=["toy", "toy_bmn"], help="bsnpp configs whose runs provide the toy proposals")
    g.add_argument("--weights", nargs="+", type=float, default=None, help="one weight per proposal source")
    g.add_argument("--ensemble", default="union", choices=["union", "voting"], help="fusion method")
    g.add_argument("--normalise", default="max", choices=["max", "minmax", "rank", "none"], help="per-source score normalisation")
    g.add_argument("--sigma", type=float, default=0.4, help="Gaussian Soft-NMS sigma of the ensemble")
    g.add_argument("--nms-threshold", type=float, default=0.0, help="Soft-NMS decays only above this tIoU")
    g.add_argument("--vote-iou", type=float, default=0.7, help="tIoU of a match in score voting")
    g.add_argument("--top-k", type=int, default=100, help="fused proposals kept per video (the AR@100 budget)")


def add_classifier_args(p):
    g = p.add_argument_group("video classifier")
    g.add_argument("--temporal-size", type=int, default=32, help="snippets after resampling")
    g.add_argument("--pooling", default="meanmax", choices=["meanmax", "attention"], help="temporal pooling")
    g.add_argument("--hidden", type=int, default=512, help="encoder and MLP width")
    g.add_argument("--dropout", type=float, default=0.5, help="dropout in the MLP")
    g.add_argument("--cls-epochs", type=int, default=30, help="classifier epochs")
    g.add_argument("--cls-lr", type=float, default=1e-3, help="Adam learning rate")
    g.add_argument("--cls-weight-decay", type=float, default=1e-4, help="Adam weight decay")
    g.add_argument("--cls-batch-size", type=int, default=32,
                   help="global batch of the classifier (videos per step over all processes)")


def add_detection_args(p):
    g = p.add_argument_group("detections")
    g.add_argument("--video-scores", default="", help="external video-level scores (skip training the classifier)")
    g.add_argument("--top-k-classes", type=int, default=2, help="classes per video (BSN/BMN: 2)")
    g.add_argument("--proposal-exponent", type=float, default=1.0, help="a in score = p^a * c^b")
    g.add_argument("--class-exponent", type=float, default=1.0, help="b in score = p^a * c^b")
    g.add_argument("--per-class-nms", action=argparse.BooleanOptionalAction, default=False, help="Soft-NMS per class")
    g.add_argument("--max-detections", type=int, default=0,
                   help="detections kept per video, best first (0 = no cap: every proposal x each of the top-k "
                        "classes, 200 per video with 100 proposals and k = 2, what BSN/BMN/G-TAD submit; the "
                        "official evaluator has no cap)")


def resolve_data(args):
    """(ground-truth path, feature store); the toy data is bsnpp's (``make bsnpp-data``)."""
    root = Path(args.data_root) if args.data_root else TOY_DATA
    gt = root / args.annotations if args.data_root else root / "activity_net.v1-3.min.json"
    feats = root / args.features if args.data_root else root / "csv_features"
    if not args.data_root and not gt.is_file():
        raise FileNotFoundError(f"{gt}: bsnpp's toy data is missing: run `make bsnpp-data` (or make actnet_challenge-train)")
    for path in (gt, feats):
        if not path.exists():
            raise FileNotFoundError(f"{path}: not found")
    store = Hdf5FeatureFile(feats) if feats.suffix.lower() in (".h5", ".hdf5") else CsvFeatureFolder(feats, prefix=args.feature_prefix)
    return gt, store


def evaluation_ground_truth(gt_path, store, args) -> tuple[dict, str]:
    """(ground truth to score on, what it is, for the printed tables).

    Default: the evaluated subset restricted to the videos that have features, the videos bsnpp
    evaluates (BSN/BMN evaluate the 4,728 validation videos with features; the public feature
    release lacks some), so that the two packages' numbers compare. ``--full-gt``: every video
    of the subset; a video without features has no proposal and counts as a miss.
    """
    gt = load_json(gt_path)
    db = gt.get("database", {})
    subset = [v for v, info in db.items() if isinstance(info, dict) and info.get("subset") == args.val_subset]
    if args.full_gt:
        return gt, f"{args.val_subset}: all {len(subset)} videos (--full-gt)"
    missing = {v for v in subset if not store.has(v)}
    kept = {v: info for v, info in db.items() if v not in missing}
    return ({**gt, "database": kept},
            f"{args.val_subset}: the {len(subset) - len(missing)} of {len(subset)} videos with features "
            f"(as bsnpp; --full-gt for all)")
