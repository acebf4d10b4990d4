"""Builders shared by train.py, eval.py and predict.py: argument groups, data, model, loss,
optimizer. Hyper-parameters live here as argparse defaults with help= (the paper's where it gives
them); a YAML in configs/ only changes defaults.
"""
from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import torch

from celeba_spoof.data import SpoofDataset, load_split
from celeba_spoof.loss import DEFAULT_WEIGHTS, VARIANTS, AENetLoss, variant_terms
from celeba_spoof.model import AENet
from shared import dist

log = logging.getLogger("celeba_spoof")
HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
TOY_CONFIG = HERE / "configs" / "toy.yaml"
PAPER = "celeba_spoof"
# arguments that define the network and its input: a checkpoint's values win over the flags
MODEL_KEYS = ("variants", "env_head", "width", "geo_size", "input_size", "normalize")


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data-root", default="", help="CelebA-Spoof root holding Data/ and metas/; empty = the embedded toy data (written on first use)")
    g.add_argument("--protocol", default="intra_test", help="label lists metas/<protocol>/{train,test}_label.json (or .txt): intra_test, protocol1, protocol2/<folder>")
    g.add_argument("--maps-root", default="", help="folder mirroring Data/ that holds <image>_depth.png / _reflect.png (default: beside the images)")
    g.add_argument("--val-fraction", type=float, default=0.05, help="fraction of training subjects held out as validation (threshold, model selection); 0 = none")
    g.add_argument("--val-seed", type=int, default=0, help="seed of the validation-subject draw")
    g.add_argument("--input-size", type=int, default=224, help="face crops are resized to this square (released model: 224)")
    g.add_argument("--geo-size", type=int, default=14, help="side of the depth / reflection maps (released model: 14)")
    g.add_argument("--normalize", default="none", choices=["none", "imagenet"], help="input normalisation after ToTensor (released inference: none)")
    g.add_argument("--jitter", type=float, nargs=4, default=[0.4, 0.4, 0.4, 0.0], metavar=("B", "C", "S", "H"),
                   help="ColorJitter brightness contrast saturation hue for training (all 0 = off)")
    g.add_argument("--negative-bbox", default="clamp", choices=["clamp", "whole"], help="boxes with negative values: clamp as the official code does, or use the whole image")
    g.add_argument("--geo-known-zeros", action=argparse.BooleanOptionalAction, default=True,
                   help="use the paper's zero targets (spoof depth, live reflection) without a file; otherwise only maps on disk supervise G^d / G^r")
    g.add_argument("--max-images", type=int, default=0, help="use at most this many training images (a quick look at real data; 0 = all)")
    g.add_argument("--toy-root", default="", help="where the toy data is written (default <repo>/data/toy/celeba_spoof)")
    g.add_argument("--toy-train-subjects", type=int, default=40, help="toy: subjects in Data/train")
    g.add_argument("--toy-test-subjects", type=int, default=14, help="toy: subjects in Data/test")
    g.add_argument("--toy-live", type=int, default=6, help="toy: live images per subject")
    g.add_argument("--toy-spoof", type=int, default=14, help="toy: spoof images per subject")
    g.add_argument("--toy-cue", type=float, default=None, help="toy: strength of the spoof media's artefacts "
                   "(1 = full, 0 = perfect replicas; default: toy.py's)")


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--variants", nargs="+", default=["CSG"], choices=sorted(VARIANTS),
                   help="AENet variants trained one after the other (C = baseline, CSG = AENet_C,S,G, CSG-Gd = without G^d, ...)")
    g.add_argument("--env-head", action=argparse.BooleanOptionalAction, default=False,
                   help="add the environment head S^e (label [42]; not in the released model)")
    g.add_argument("--width", type=int, default=64, help="ResNet-18 base width (64 = ResNet-18)")
    g.add_argument("--pretrained", default="torchvision", help="ImageNet ResNet-18 weights (the paper's start): 'torchvision' (downloaded once by torchvision), a local torchvision state-dict file (offline), or '' (random init)")


def add_loss_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("loss weights (paper Eq. 1-2)")
    for t, help_ in (("c", "L_C, live/spoof"), ("f", "L_{S^f}, face attributes"), ("s", "L_{S^s}, spoof type"),
                     ("i", "L_{S^i}, illumination"), ("e", "L_{S^e}, environment (ours)"),
                     ("d", "L_{G^d}, depth"), ("r", "L_{G^r}, reflection")):
        key = {"c": "C", "f": "Sf", "s": "Ss", "i": "Si", "e": "Se", "d": "Gd", "r": "Gr"}[t]
        g.add_argument(f"--lambda-{t}", type=float, default=DEFAULT_WEIGHTS[key], help=f"weight of {help_}")


def add_optim_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("optimisation (paper: SGD, lr 5e-3, 50 epochs)")
    g.add_argument("--opt", default="sgd", choices=["sgd", "adam"], help="sgd (paper) or adam (the author later found Adam 1e-3 slightly better)")
    g.add_argument("--lr", type=float, default=5e-3, help="learning rate (paper SGD: 5e-3; Adam: 1e-3)")
    g.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    g.add_argument("--weight-decay", type=float, default=5e-4, help="weight decay")
    g.add_argument("--sched", default="none", choices=["none", "cosine", "step"], help="learning-rate schedule (paper: none stated)")
    g.add_argument("--lr-step", type=int, default=20, help="step schedule: multiply by --lr-gamma every N epochs")
    g.add_argument("--lr-gamma", type=float, default=0.1, help="step schedule factor")
    g.add_argument("--epochs", type=int, default=50, help="training epochs")
    g.add_argument("--batch-size", type=int, default=64, help="global batch: images per optimizer step over all "
                   "processes (each takes batch / processes; the paper does not give it)")
    g.add_argument("--clip-grad", type=float, default=0.0, help="gradient-norm clip (0 = off)")
    g.add_argument("--eval-every", type=int, default=1, help="validation metrics every N epochs (0 = only at the end)")
    g.add_argument("--fprs", type=float, nargs="+", default=[0.01, 0.005, 0.001], help="FPRs of the TPR@FPR metric")
    g.add_argument("--print-freq", type=int, default=20, help="progress refresh period in iterations")
    g.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")


def toy_root(args) -> Path:
    return Path(args.toy_root) if args.toy_root else REPO_ROOT / "data" / "toy" / PAPER


def resolve_root(args) -> Path:
    """--data-root, or the toy data (written once, on rank 0) when it is empty."""
    if not args.data_root:
        from celeba_spoof import toy

        root = toy_root(args)
        if dist.is_main():
            toy.make_toy_dataset(root, train_subjects=args.toy_train_subjects, test_subjects=args.toy_test_subjects,
                                 live_per_subject=args.toy_live, spoof_per_subject=args.toy_spoof,
                                 cue=toy.DEFAULT_CUE if args.toy_cue is None else args.toy_cue)
        dist.barrier()
        return root
    root = Path(args.data_root)
    if not root.is_dir():
        raise FileNotFoundError(f"--data-root {root}: no such folder")
    if not (root / "Data").is_dir() or not (root / "metas").is_dir():
        raise FileNotFoundError(f"--data-root {root}: expected Data/ and metas/ inside (the CelebA_Spoof folder of the release)")
    return root


def build_data(args, splits=("train", "test")) -> dict:
    """Samples of the protocol's lists: ``train`` / ``val`` (subject-disjoint, from the train
    list) and ``test``, with their data reports (logged; problems counted, never fatal unless
    nothing is usable)."""
    root = resolve_root(args)
    maps_root = Path(args.maps_root) if args.maps_root else None
    out = {"root": root, "reports": {}}
    if "train" in splits or "val" in splits:
        tr = load_split(root, args.protocol, "train", maps_root, args.val_fraction, args.val_seed)
        out["train"] = tr["train"]
        if args.max_images and len(out["train"]) > args.max_images:
            g = torch.Generator().manual_seed(args.seed)
            keep = torch.randperm(len(out["train"]), generator=g)[:args.max_images].sort().values
            out["train"] = [out["train"][i] for i in keep.tolist()]
        out["val"] = tr.get("val", [])
        out["reports"]["train"] = tr["report"]
        out["files"] = {"train": str(tr["file"])}
    if "test" in splits:
        te = load_split(root, args.protocol, "test", maps_root)
        out["test"] = te["test"]
        out["reports"]["test"] = te["report"]
        out.setdefault("files", {})["test"] = str(te["file"])
    if dist.is_main():
        for split, rep in out["reports"].items():
            (log.warning if rep.missing_image or rep.bad_label else log.info)(
                "%s list %s: %s", split, out["files"][split], rep.summary())
        if "val" in out:
            log.info("train / val: %d / %d images (%d%% of the subjects held out for validation)",
                     len(out["train"]), len(out["val"]), round(100 * args.val_fraction))
    return out


def dataset(args, samples, train: bool) -> SpoofDataset:
    return SpoofDataset(samples, input_size=args.input_size, train=train, geo_size=args.geo_size,
                        jitter=tuple(args.jitter), normalize=args.normalize, negative_bbox=args.negative_bbox,
                        geo_known_zeros=args.geo_known_zeros, load_maps=train)


def build_model(args, variant: str) -> AENet:
    model = AENet(terms=variant_terms(variant, args.env_head), width=args.width, geo_size=args.geo_size)
    if getattr(args, "pretrained", ""):
        model.load_imagenet(args.pretrained)
        log.info("trunk initialised from ImageNet weights: %s", args.pretrained)
    return model


def build_criterion(args, variant: str) -> AENetLoss:
    weights = {"C": args.lambda_c, "Sf": args.lambda_f, "Ss": args.lambda_s, "Si": args.lambda_i,
               "Se": args.lambda_e, "Gd": args.lambda_d, "Gr": args.lambda_r}
    return AENetLoss(variant_terms(variant, args.env_head), weights)


def build_optimizer(args, model):
    params = [p for p in model.parameters() if p.requires_grad]
    if args.opt == "sgd":
        opt = torch.optim.SGD(params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=args.lr, weight_decay=args.weight_decay)
    # one LambdaLR for every schedule: its factor is a function of the epoch and of the current
    # --epochs, so a resumed (or extended) run follows the schedule an uninterrupted run follows
    epochs, step, gamma = args.epochs, args.lr_step, args.lr_gamma
    if args.sched == "cosine":
        factor = lambda e: 0.5 * (1.0 + math.cos(math.pi * min(e, epochs) / epochs))  # noqa: E731
    elif args.sched == "step":
        factor = lambda e: gamma ** (e // step)  # noqa: E731
    else:
        factor = lambda e: 1.0  # noqa: E731
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    return opt, sched
