"""Argument groups shared by prune.py, train.py and eval.py (so every config loads in every
script), and the builders that read them.

Defaults are the official recipe for ResNet-50 (config/res50/dmcp.yaml and retrain.yaml of
Zx55/dmcp); a YAML in configs/ changes them per table row. `--batch-size` is the *global* batch
(the repository's rule: each of N processes takes batch / N), by default the official 64 x 32
GPUs = 2048 images, for which the official learning rates are set; `--scale-lr` (on by default)
multiplies every learning rate of the run - weights, retraining and the architecture's alpha -
by batch / 2048, so a smaller global batch follows the same recipe per epoch.
Warm-ups are given in epochs (official: 1000 / 1250 iterations of 2048 images = 1.6 / 2 epochs).

Units: `--flops` is in MFLOPs (millions of multiply-adds) on the command line and in configs;
`target_madds(args)` is the one place that converts it: inside the code every count and budget is
in absolute multiply-adds.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from dmcp.supernet import MODELS, build_supernet
from shared import config

HERE = Path(__file__).resolve().parent
OFFICIAL_GLOBAL_BATCH = 2048


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data (ImageFolder)")
    g.add_argument("--data-root", default="", help="dataset root holding train/ and val/ class folders; "
                   "empty = the embedded toy data (written on first use)")
    g.add_argument("--train-dir", default="train", help="training split folder under --data-root")
    g.add_argument("--val-dir", default="val", help="validation split folder under --data-root")
    g.add_argument("--input-size", type=int, default=224, help="training / evaluation crop")
    g.add_argument("--test-resize", type=int, default=256, help="evaluation: resize the shorter side, then center-crop")
    g.add_argument("--rrc-min-scale", type=float, default=0.08, help="RandomResizedCrop minimum area fraction")
    g.add_argument("--color-jitter", type=float, nargs=4, default=[0.2, 0.2, 0.2, 0.1],
                   help="brightness contrast saturation hue (official: 0.2 0.2 0.2 0.1; zeros = off)")
    g.add_argument("--batch-size", type=int, default=OFFICIAL_GLOBAL_BATCH,
                   help="global batch: images per optimizer step over all processes (each takes batch / processes; "
                        "official: 2048 = 64 on each of 32 GPUs)")
    g.add_argument("--toy-root", default="", help="where the toy data goes (default <repo>/data/toy/dmcp)")
    g.add_argument("--toy-train-per-class", type=int, default=200, help="toy training images per class")
    g.add_argument("--toy-val-per-class", type=int, default=50, help="toy validation images per class")


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("supernet")
    g.add_argument("--model", default="resnet50", choices=sorted(MODELS), help="torchvision network to prune")
    g.add_argument("--pretrained", default="", help="start the search from torchvision weights (DEFAULT, "
                   "IMAGENET1K_V1, ...) or a local state-dict file; empty = from scratch (official)")
    g.add_argument("--min-width", type=float, default=0.1, help="narrowest state, as a width multiplier")
    g.add_argument("--max-width", type=float, default=1.0, help="supernet width (1.0 ResNets, 1.5 MobileNetV2)")
    g.add_argument("--width-step", type=float, default=0.1, help="width of one channel group")
    g.add_argument("--channel-multiple", type=int, default=1, help="hardware-friendly grid: group sizes "
                   "(and widths) multiples of this (e.g. 8); 1 = the official grid")
    g.add_argument("--dropout", type=float, default=None, help="MobileNetV2 classifier dropout (torchvision 0.2; official code 0)")
    g.add_argument("--toy-width", type=float, default=0.25, help="toy models: width multiplier of the base network")


def add_search_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("search (official config/res50/dmcp.yaml)")
    g.add_argument("--flops", type=float, default=2200.0, help="target FLOPs in MFLOPs (millions of multiply-adds)")
    g.add_argument("--epochs", type=int, default=40, help="search epochs (stage 1 + stage 2)")
    g.add_argument("--stage1-fraction", type=float, default=0.5,
                   help="share of the search iterations that only warm up the weights (official: half)")
    g.add_argument("--lr", type=float, default=0.5, help="weight lr at the start of the search (official base_lr)")
    g.add_argument("--warmup-lr", type=float, default=0.5, help="weight lr reached after the warm-up (peak of the cosine)")
    g.add_argument("--warmup-epochs", type=float, default=0.0, help="linear warm-up from --lr to --warmup-lr (MobileNetV2: 1.6)")
    g.add_argument("--min-lr", type=float, default=0.08, help="weight lr at the end of the cosine")
    g.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (weights, architecture, retraining)")
    g.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=True, help="Nesterov momentum")
    g.add_argument("--weight-decay", type=float, default=1e-4, help="weight decay (none on BN and biases); MobileNetV2 4e-5")
    g.add_argument("--label-smoothing", type=float, default=0.0, help="max-architecture / architecture CE smoothing (MobileNetV2 0.1)")
    g.add_argument("--num-sample", type=int, default=4, help="sandwich architectures per step: max, min and num-sample - 2 random")
    g.add_argument("--random-decay", type=float, default=0.9999,
                   help="stage 2: probability of a uniform (not Markov) random architecture, x this every --random-decay-every steps")
    g.add_argument("--random-decay-every", type=int, default=10, help="steps between decays of that probability")
    g.add_argument("--distill-temperature", type=float, default=1.0, help="in-place distillation temperature T")
    g.add_argument("--distill-weight", type=float, default=1.0, help="weight of the distillation loss")
    g.add_argument("--arch-lr", type=float, default=0.5, help="architecture (alpha) lr at the start of stage 2")
    g.add_argument("--arch-min-lr", type=float, default=0.1, help="alpha lr at the end (cosine over stage 2)")
    g.add_argument("--arch-train-freq", type=int, default=1, help="an architecture step every N iterations of stage 2")
    g.add_argument("--budget-loss", default="log_l1", choices=["log_l1", "l1", "l2"], help="FLOPs loss")
    g.add_argument("--budget-weight", type=float, default=0.1, help="weight of the FLOPs loss")
    g.add_argument("--budget-band", type=float, default=0.95, help="accepted band [band x target, target]")
    g.add_argument("--calib-batches", type=int, default=5, help="training batches for BN re-calibration before validation")
    g.add_argument("--val-every", type=int, default=1, help="validate every N epochs (0 = only at the end)")
    g.add_argument("--scale-lr", action=argparse.BooleanOptionalAction, default=True,
                   help=f"multiply every lr (weights, alpha, retraining) by --batch-size / {OFFICIAL_GLOBAL_BATCH} "
                        "(the official global batch)")
    g.add_argument("--print-freq", type=int, default=50, help="progress refresh period in iterations")


def add_derive_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("derivation")
    g.add_argument("--derive", default="es", choices=["es", "ds"], help="architecture written to arch.json: "
                   "expected sampling (the authors') or direct sampling")
    g.add_argument("--ds-samples", type=int, default=5, help="direct-sampling architectures written beside (arch_ds_<i>.json)")
    g.add_argument("--export-program", action=argparse.BooleanOptionalAction, default=True,
                   help="also write pruned.pt2 (torch.export; loads with plain torch)")


def add_retrain_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("retraining from scratch (official config/*/retrain.yaml)")
    g.add_argument("--then-retrain", action=argparse.BooleanOptionalAction, default=False,
                   help="prune.py: retrain and evaluate the pruned network right after the search")
    g.add_argument("--retrain-epochs", type=int, default=100, help="epochs (ResNet 100, MobileNetV2 250)")
    g.add_argument("--retrain-lr", type=float, default=0.2, help="lr at the start of the warm-up")
    g.add_argument("--retrain-warmup-lr", type=float, default=0.8, help="lr after the warm-up (peak of the cosine)")
    g.add_argument("--retrain-warmup-epochs", type=float, default=2.0, help="linear warm-up length")
    g.add_argument("--retrain-min-lr", type=float, default=0.0, help="lr at the end of the cosine")
    g.add_argument("--retrain-weight-decay", type=float, default=1e-4, help="weight decay, none on BN and biases (MobileNetV2 4e-5)")
    g.add_argument("--retrain-label-smoothing", type=float, default=0.1, help="label smoothing")
    g.add_argument("--retrain-init", default="scratch", choices=["scratch", "inherit"],
                   help="random initialisation (paper) or the supernet's weights (arch's pruned.pt)")
    g.add_argument("--eval-every", type=int, default=1, help="evaluate every N retraining epochs (0 = only at the end)")


def add_all_args(p: argparse.ArgumentParser, train: bool = True) -> argparse.ArgumentParser:
    """Every group; `train=False` for eval.py (fp32 unless --amp). No --config and no --data-root
    runs configs/toy.yaml (the toy default)."""
    config.add_runtime_args(p, toy_config=HERE / "configs" / "toy.yaml", train=train)
    add_data_args(p)
    add_model_args(p)
    add_search_args(p)
    add_derive_args(p)
    add_retrain_args(p)
    return p


def check_args(args) -> None:
    """Invariants, checked before any work starts."""
    if args.flops is None or float(args.flops) <= 0:
        raise ValueError(f"--flops must be a positive number of MFLOPs, got {args.flops!r}")
    args.flops = float(args.flops)  # the official --flops stayed a string and crashed stage 2
    if args.epochs < 1 or args.batch_size < 1 or args.retrain_epochs < 0:
        raise ValueError("--epochs and --batch-size must be positive, --retrain-epochs >= 0")
    if args.num_sample < 2:
        raise ValueError("--num-sample must be at least 2 (max and min architectures)")
    if not 0.0 <= args.stage1_fraction < 1.0:
        raise ValueError("--stage1-fraction must be in [0, 1)")
    if not 0.0 < args.budget_band <= 1.0:
        raise ValueError("--budget-band must be in (0, 1]")
    if args.arch_train_freq < 1 or args.random_decay_every < 1:
        raise ValueError("--arch-train-freq and --random-decay-every must be at least 1")


def supernet_from_args(args, num_classes: int):
    return build_supernet(args.model, num_classes=num_classes, input_size=args.input_size,
                          min_width=args.min_width, max_width=args.max_width, width_step=args.width_step,
                          multiple=args.channel_multiple, pretrained=args.pretrained, dropout=args.dropout,
                          toy_width=args.toy_width)


def lr_scale(args) -> float:
    """The factor on every learning rate: global batch / 2048 with --scale-lr (the linear rule the
    official recipe needs when the global batch is not its own), else 1. It applies to alpha too:
    the architecture step also averages its gradient over the batch and takes one step per
    iteration, so a smaller batch takes more alpha steps per epoch, each scaled down alike (the
    budget term's push per epoch then stays the same as well)."""
    return args.batch_size / OFFICIAL_GLOBAL_BATCH if args.scale_lr else 1.0


def target_madds(args) -> float:
    """--flops (MFLOPs on the command line) as the absolute multiply-adds the code counts in."""
    return float(args.flops) * 1e6


def load_arch(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such arch.json (run prune.py first)")
    try:
        arch = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    for key in ("layers", "builder", "madds"):
        if key not in arch:
            raise ValueError(f"{path}: missing key {key!r} (not an arch.json written by dmcp's prune.py)")
    return arch
