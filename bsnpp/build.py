"""Builders shared by train.py and eval.py: the argument groups, the data, the model, the loss.

Hyper-parameters live here as argparse defaults with help= (BMN's recipe where BSN++ is silent);
a YAML in configs/ only changes defaults.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bsnpp.data import ProposalDataset, open_feature_store, scan_features
from bsnpp.loss import BSNPPLoss
from bsnpp.model import BSNPP
from bsnpp.records import load_records
from shared import dist

log = logging.getLogger("bsnpp")
HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
TOY_CONFIG = HERE / "configs" / "toy.yaml"  # the toy default: no --config and no --data-root


def tscale(args) -> int:
    """T of the model, the labels and the maps: the window (THUMOS14) or the rescaled length."""
    return args.window or args.temporal_scale


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data-root", default="", help="dataset root; empty = the embedded toy data (written on first use)")
    g.add_argument("--annotations", nargs="+", default=["activity_net.v1-3.min.json"],
                   help="annotation files under --data-root: the ActivityNet-1.3 JSON, or BSN's "
                        "video_info_new.csv + anet_anno_action.json, or a THUMOS14 CSV/JSON")
    g.add_argument("--features", default="csv_mean_100", help="feature folder (CSV per video) or .h5 file under --data-root")
    g.add_argument("--feature-prefix", default="v_", help="file-name prefix of CSV features (BSN: v_)")
    g.add_argument("--feature-layout", default="LC", choices=["LC", "CL"], help="HDF5 dataset layout")
    g.add_argument("--train-subset", default="training", help="subset trained on (THUMOS14: validation)")
    g.add_argument("--val-subset", default="validation", help="subset evaluated (THUMOS14: testing)")
    g.add_argument("--temporal-scale", type=int, default=100, help="T: snippets per video after rescaling")
    g.add_argument("--window", type=int, default=0, help="sliding-window length in snippets (THUMOS14); 0 = rescale whole videos")
    g.add_argument("--stride", type=int, default=0, help="sliding-window stride (0 = window/2)")
    g.add_argument("--boundary-width", type=float, default=3.0, help="boundary region width in units of 1/T (BMN: 3)")
    g.add_argument("--toy-root", default="", help="where the toy data is written (default <repo>/data/toy/bsnpp)")
    g.add_argument("--toy-videos", type=int, default=400, help="toy dataset size (when --data-root is empty)")
    g.add_argument("--toy-channels", type=int, default=32, help="toy feature channels")


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--num-sample", type=int, default=32, help="BM layer: N sampled points per proposal")
    g.add_argument("--num-sample-perbin", type=int, default=3, help="BM layer: interpolated points per sample")
    g.add_argument("--prop-boundary-ratio", type=float, default=0.5, help="BM layer: extension on each side, x proposal length")
    g.add_argument("--hidden-1d", type=int, default=256, help="base module width")
    g.add_argument("--hidden-2d", type=int, default=128, help="proposal map width")
    g.add_argument("--hidden-3d", type=int, default=512, help="BM layer output width (Conv3d)")
    g.add_argument("--cbg", default="unet", choices=["unet", "tem"], help="boundary module: CBG nested U-Net or BMN's TEM")
    g.add_argument("--cbg-width", type=int, default=128, help="CBG base width")
    g.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=True,
                   help="bi-directional boundary matching (reversed pass + consistency)")
    g.add_argument("--prb", default="both", choices=["none", "position", "channel", "both"], help="proposal relation block")
    g.add_argument("--bm-impl", default="fused", choices=["fused", "dense"], help="fused BM layer or BMN's dense mask")


def add_loss_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("loss")
    g.add_argument("--reg-weight", type=float, default=10.0, help="weight of the IoU regression term (BMN: 10)")
    g.add_argument("--pem-weight", type=float, default=10.0, help="weight of the whole map loss (reimplementation: 10)")
    g.add_argument("--consistency-weight", type=float, default=1.0, help="bi-directional feature consistency (MSE)")
    g.add_argument("--scale-balanced", action=argparse.BooleanOptionalAction, default=True,
                   help="scale-balanced re-sampling of the map losses")
    g.add_argument("--num-scale-bins", type=int, default=4, help="log-spaced duration bins for scale balancing")


def add_post_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("post-processing and evaluation")
    g.add_argument("--score-mode", default="product", choices=["product", "sqrt"], help="start*end*cls*reg (BMN code) or with sqrt(cls*reg)")
    g.add_argument("--boundary-filter", default="bmn", choices=["bmn", "none"], help="BMN's start/end peak filter")
    g.add_argument("--soft-nms-alpha", type=float, default=0.4, help="Gaussian Soft-NMS alpha (BMN 0.4, BSN 0.75)")
    g.add_argument("--soft-nms-low", type=float, default=0.5, help="Soft-NMS IoU threshold at width 0 (BMN 0.5)")
    g.add_argument("--soft-nms-high", type=float, default=0.9, help="Soft-NMS IoU threshold at width 1 (BMN 0.9)")
    g.add_argument("--top-k", type=int, default=100, help="proposals kept per video")
    g.add_argument("--max-avg-nr-proposals", type=int, default=100, help="AR@AN budget (THUMOS14: 1000)")
    g.add_argument("--tiou-thresholds", default="0.5:0.95:0.05", help="start:stop:step or a comma list (THUMOS14: 0.5:1.0:0.05)")


def add_optim_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("optimisation (BMN's recipe)")
    g.add_argument("--epochs", type=int, default=9, help="training epochs")
    g.add_argument("--batch-size", type=int, default=16,
                   help="global batch: videos per optimizer step over all processes (BMN: 16); each of N "
                        "processes takes batch/N")
    g.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    g.add_argument("--weight-decay", type=float, default=1e-4, help="Adam weight decay")
    g.add_argument("--lr-step", type=int, default=7, help="multiply the lr by --lr-gamma every this many epochs")
    g.add_argument("--lr-gamma", type=float, default=0.1, help="step decay factor")
    g.add_argument("--clip-grad", type=float, default=0.0, help="gradient-norm clip (0 = off)")
    g.add_argument("--eval-every", type=int, default=1, help="AR@AN/AUC on the validation set every N epochs (0 = only at the end)")
    g.add_argument("--sync-bn", action=argparse.BooleanOptionalAction, default=True, help="SyncBatchNorm under DDP (the CBG has BN)")
    g.add_argument("--print-freq", type=int, default=10, help="progress refresh period in iterations")


def toy_root() -> Path:
    return REPO_ROOT / "data" / "toy" / "bsnpp"


def resolve_data(args) -> tuple[Path, list[Path], Path]:
    """(root, annotation paths, feature path); writes the toy data when --data-root is empty."""
    if not args.data_root:
        from bsnpp import toy

        root = Path(args.toy_root) if args.toy_root else toy_root()
        if dist.is_main():
            toy.make_toy_dataset(root, videos=args.toy_videos, channels=args.toy_channels)
        dist.barrier()
        return root, [root / toy.GT_FILE], root / toy.FEATURE_DIR
    root = Path(args.data_root)
    if not root.is_dir():
        raise FileNotFoundError(f"--data-root {root}: no such folder")
    anns = [root / a for a in args.annotations]
    for a in anns:
        if not a.is_file():
            raise FileNotFoundError(f"{a}: annotation file not found (set --annotations)")
    feats = root / args.features
    if not feats.exists():
        raise FileNotFoundError(f"{feats}: feature folder/file not found (set --features)")
    return root, anns, feats


def build_data(args, splits=("train", "val")) -> dict:
    """Records, scanned feature store and datasets. Bad feature files are reported here, before
    any epoch, and skipped."""
    _, anns, feats = resolve_data(args)
    store = open_feature_store(feats, prefix=args.feature_prefix, layout=args.feature_layout)
    out = {"store": store}
    window = args.window or None
    stride = args.stride or None
    for split in splits:
        subset = args.train_subset if split == "train" else args.val_subset
        records = load_records(*anns, subset=subset)
        usable, report = scan_features(records, store)
        if dist.is_main():
            (log.warning if not report.ok else log.info)("%s (%s): %s", split, subset, report.summary())
        out[f"{split}_records"] = usable
        out[f"{split}_report"] = report
        out["channels"] = report.channels
        kw = dict(temporal_scale=args.temporal_scale, window=window, stride=stride,
                  boundary_width=args.boundary_width)
        if split == "train":
            out["train"] = ProposalDataset(usable, store, mode="train", **kw)
        else:
            out["val"] = ProposalDataset(usable, store, mode="train", **kw)  # labelled: val loss
            out["infer"] = ProposalDataset(usable, store, mode="infer", **kw)
    return out


def build_model(args, in_channels: int) -> BSNPP:
    return BSNPP(in_channels=in_channels, tscale=tscale(args), num_sample=args.num_sample,
                 num_sample_perbin=args.num_sample_perbin, prop_boundary_ratio=args.prop_boundary_ratio,
                 hidden_1d=args.hidden_1d, hidden_2d=args.hidden_2d, hidden_3d=args.hidden_3d,
                 cbg=args.cbg, cbg_width=args.cbg_width, bidirectional=args.bidirectional,
                 prb=args.prb, bm_impl=args.bm_impl)


def build_criterion(args) -> BSNPPLoss:
    return BSNPPLoss(tscale(args), reg_weight=args.reg_weight, pem_weight=args.pem_weight,
                     consistency_weight=args.consistency_weight, scale_balanced=args.scale_balanced,
                     num_scale_bins=args.num_scale_bins)
