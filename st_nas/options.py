"""Argument groups shared by search.py, train.py and eval.py (so every config loads in every
script), and the checks run before any work.

ST-NAS publishes no training recipe, so the defaults are SPOS's official ImageNet recipe (Guo et
al. 2020, megvii-model/SinglePathOneShot): SGD momentum 0.9, lr 0.5 decayed linearly, global batch
1024, weight decay 4e-5, label smoothing 0.1, 150k supernet iterations (here 100 SGD + 20 SGLD
epochs of the 1.23M non-held-out images = 144k iterations) and 300k retraining iterations
(240 epochs); evolution with population 50, top-k 10, 20 generations, 25 mutations and 25
crossovers, mutation probability 0.1.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from shared import config
from st_nas.space import OPS

HERE = Path(__file__).resolve().parent
PROXIES = ("sgld_avg", "sgd_last", "sgd_avg")


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data (ImageFolder)")
    g.add_argument("--data-root", default="", help="dataset root holding train/ and val/ class folders; "
                   "empty = the embedded toy data (written on first use)")
    g.add_argument("--train-dir", default="train", help="training split folder under --data-root")
    g.add_argument("--val-dir", default="val", help="validation split folder under --data-root")
    g.add_argument("--toy-root", default="", help="where the toy data goes (default <repo>/data/toy/st_nas)")
    g.add_argument("--toy-train-per-class", type=int, default=300, help="toy training images per class")
    g.add_argument("--toy-val-per-class", type=int, default=50, help="toy validation images per class")
    g.add_argument("--rrc-min-scale", type=float, default=0.08, help="RandomResizedCrop minimum area fraction")
    g.add_argument("--color-jitter", type=float, default=0.4, help="ColorJitter brightness/contrast/saturation (SPOS 0.4)")
    g.add_argument("--crop-ratio", type=float, default=0.875, help="evaluation: resize to input/ratio, center-crop")
    g.add_argument("--batch-size", type=int, default=1024, help="global training batch (split over processes)")
    g.add_argument("--eval-batch-size", type=int, default=512, help="global evaluation / calibration batch")
    g.add_argument("--print-freq", type=int, default=50, help="progress-bar refresh, in steps")


def add_space_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("search space (MobileNetV2-1.0 skeleton, one DAG block per stage)")
    g.add_argument("--input-size", type=int, default=224, help="training / evaluation crop")
    g.add_argument("--stem-width", type=int, default=32, help="3x3 stem conv width")
    g.add_argument("--stem-stride", type=int, default=2, help="3x3 stem conv stride")
    g.add_argument("--first-width", type=int, default=16, help="output width of the fixed t=1 bottleneck")
    g.add_argument("--widths", type=int, nargs="+", default=[24, 32, 64, 96, 160, 320], help="stage widths")
    g.add_argument("--strides", type=int, nargs="+", default=[2, 2, 2, 1, 2, 1], help="stage strides")
    g.add_argument("--nodes", type=int, nargs="+", default=[3, 4, 5, 4, 4, 2],
                   help="nodes per stage block (MobileNetV2 depth + 1: the chain is MobileNetV2's stage)")
    g.add_argument("--ops", nargs="+", default=list(OPS), help="ops an edge may carry (k<kernel>e<expansion>)")
    g.add_argument("--last-width", type=int, default=1280, help="width of the final 1x1 conv")
    g.add_argument("--zero-init-residual", action=argparse.BooleanOptionalAction, default=True,
                   help="start every residual op as the identity (last BN scale 0)")


def add_optim_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("optimisation (SPOS recipe; supernet and retraining)")
    g.add_argument("--lr", type=float, default=0.5, help="initial learning rate at --batch-size, decayed linearly")
    g.add_argument("--warmup-epochs", type=float, default=0.0, help="linear warm-up from 0.1 x lr")
    g.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    g.add_argument("--weight-decay", type=float, default=4e-5, help="on conv / linear weights (none on BN, biases)")
    g.add_argument("--label-smoothing", type=float, default=0.1, help="cross-entropy label smoothing")


def add_search_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("supernet, SGLD and the proxy")
    g.add_argument("--supernet-epochs", type=int, default=100, help="phase 1: SPOS uniform-path SGD epochs "
                   "(lr decays linearly from --lr to --sgld-lr)")
    g.add_argument("--sgld-epochs", type=int, default=20, help="phase 2: SGLD epochs at the constant --sgld-lr")
    g.add_argument("--snapshots", type=int, default=8, help="M: parameter samples kept, evenly spaced over phase 2")
    g.add_argument("--sgld-lr", type=float, default=0.05, help="phase 2 step size eta (and the end of phase 1's decay)")
    g.add_argument("--sgld-momentum", type=float, default=0.0, help="phase 2 momentum (0: SGLD as written)")
    g.add_argument("--temperature", type=float, default=1.0, help="tau in sqrt(2 eta tau / N); 0 = SGD")
    g.add_argument("--proxy", default="sgld_avg", choices=PROXIES,
                   help="sgld_avg: mean top-1 over the M SGLD samples; sgd_last: the last weights of a noise-free "
                        "phase 2; sgd_avg: mean over M snapshots of that noise-free chain (temporal averaging)")
    g.add_argument("--search-val-per-class", type=int, default=50, help="training images per class held out to "
                   "measure the proxy")
    g.add_argument("--calib-images", type=int, default=10000, help="training images re-estimating BN statistics "
                   "for each architecture and sample")
    g.add_argument("--snapshots-from", default="", help="reuse the supernet samples of this search run folder and "
                   "only run the evolution (e.g. ST-NAS-B after ST-NAS-A)")
    g = p.add_argument_group("evolutionary search (SPOS)")
    g.add_argument("--madds-limit", type=float, default=326.0, help="MAdds limit, millions (ST-NAS-A 326, B 503)")
    g.add_argument("--population", type=int, default=50, help="population size")
    g.add_argument("--topk", type=int, default=10, help="parents: the best k evaluated so far")
    g.add_argument("--generations", type=int, default=20, help="generations after the random one")
    g.add_argument("--mutations", type=int, default=25, help="children by mutation per generation")
    g.add_argument("--crossovers", type=int, default=25, help="children by crossover per generation")
    g.add_argument("--mutate-prob", type=float, default=0.1, help="probability to redraw each edge's choice")
    g.add_argument("--then-retrain", action=argparse.BooleanOptionalAction, default=False,
                   help="retrain the winner from scratch and evaluate it on val/ in the same run")


def add_retrain_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("retraining the searched architecture")
    g.add_argument("--retrain-epochs", type=int, default=240, help="epochs from scratch (SPOS: 300k iterations)")
    g.add_argument("--dropout", type=float, default=0.2, help="classifier dropout when retraining (MobileNetV2)")
    g.add_argument("--val-every", type=int, default=1, help="evaluate on val/ every n epochs (and at the end)")
    g.add_argument("--sync-bn", action=argparse.BooleanOptionalAction, default=False, help="SyncBatchNorm on CUDA")


def add_all_args(p: argparse.ArgumentParser, train: bool = True) -> argparse.ArgumentParser:
    add_data_args(p)
    add_space_args(p)
    add_optim_args(p)
    add_search_args(p)
    add_retrain_args(p)
    return config.add_runtime_args(p, toy_config=HERE / "configs" / "toy.yaml", train=train)


def check_args(args) -> None:
    """Invariants, before any data is read."""
    def positive(*names):
        for n in names:
            if getattr(args, n) <= 0:
                raise ValueError(f"--{n.replace('_', '-')} {getattr(args, n)}: must be positive")
    positive("batch_size", "eval_batch_size", "lr", "snapshots", "madds_limit", "population", "topk",
             "search_val_per_class", "calib_images", "input_size")
    if args.supernet_epochs < 0 or args.sgld_epochs < 1:
        raise ValueError(f"--supernet-epochs {args.supernet_epochs} / --sgld-epochs {args.sgld_epochs}: phase 2 "
                         f"needs at least one epoch (it draws the samples), phase 1 zero or more")
    if args.temperature < 0 or args.sgld_lr <= 0:
        raise ValueError(f"--temperature {args.temperature} / --sgld-lr {args.sgld_lr}: need tau >= 0, eta > 0")
    if args.topk > args.population:
        raise ValueError(f"--topk {args.topk} exceeds --population {args.population}")
    if not 0 <= args.mutate_prob <= 1:
        raise ValueError(f"--mutate-prob {args.mutate_prob}: a probability")
    if args.generations < 0 or args.mutations < 0 or args.crossovers < 0:
        raise ValueError("--generations, --mutations and --crossovers must be >= 0")
