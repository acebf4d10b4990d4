"""Command-line options and builders shared by train.py, eval.py and detect_clothes.py.

Hyper-parameters live in the argparse defaults below (the real-data recipe: ResNet-50 at 256 x 128,
templates 128 x 128, Adam 3.5e-4, 120 epochs, warm-up 10, x0.1 at 40 and 70, P = 16 x K = 4);
each YAML in configs/ only changes defaults (configs/toy.yaml: ResNet-18 at reduced size).
"""
from __future__ import annotations

import argparse
import bisect
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from cocas_reid import clothes as clothes_lib
from cocas_reid.data import DataError, Dataset, load_dataset
from cocas_reid.dataset import PixelImages, ReidImages, clothes_transform, person_transform
from cocas_reid.detector import DETECTORS
from cocas_reid.loss import BCNetLoss
from cocas_reid.model import BRANCHES, BCNet
from cocas_reid.sampler import PKBatchSampler
from shared import dist

PAPER = "cocas_reid"
HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
TOY_CONFIG = HERE / "configs" / "toy.yaml"
RUN_NAMES = {"bc": "bcnet", "bf": "bf", "cf": "cf"}


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="cocas", choices=["cocas", "market1501"], help="on-disk layout of --data-root")
    g.add_argument("--data-root", default="", help="dataset root; empty = the embedded toy data (written on first use)")
    g.add_argument("--train-list", default="", help="COCAS+ training list, relative to the root unless absolute (default train.txt)")
    g.add_argument("--variant", default="raw", choices=["raw", "desensitized"],
                   help="COCAS images: raw (images/) or desensitized (images_desensitized/: faces and background blurred)")
    g.add_argument("--toy-root", default="", help="where the toy data is written (default <repo>/data/toy/cocas_reid)")
    g.add_argument("--toy-train-ids", type=int, default=48, help="toy: training identities")
    g.add_argument("--toy-test-ids", type=int, default=40, help="toy: test identities in the gallery")
    g.add_argument("--toy-query-only-ids", type=int, default=4, help="toy: query identities absent from the gallery")
    g.add_argument("--toy-images-per-outfit", type=int, default=4, help="toy: images of each outfit")
    g.add_argument("--height", type=int, default=256, help="person image height")
    g.add_argument("--width", type=int, default=128, help="person image width")
    g.add_argument("--template-size", type=int, default=128, help="side of the square template / clothes patch input")
    g.add_argument("--pad", type=int, default=10, help="training: pad then random-crop back (pixels at 256 x 128)")
    g.add_argument("--flip", type=float, default=0.5, help="training: horizontal flip probability")
    g.add_argument("--erasing", type=float, default=0.5, help="training: random erasing probability (person images)")
    g.add_argument("--clothes-source", default="detector", choices=["detector", "parsing", "fixed"],
                   help="gallery clothes patches: clothes detector boxes, boxes from parsing maps, or the fixed "
                        "torso crop (the 'no clothes detector' row)")
    g.add_argument("--clothes-boxes", default="", help="box file for --clothes-source detector (default: the newest "
                   "<config>-detector run's clothes_boxes.json; train.py runs the detector when there is none)")
    g.add_argument("--fixed-box", type=float, nargs=4, default=list(clothes_lib.FIXED_BOX),
                   metavar=("X1", "Y1", "X2", "Y2"), help="the fixed crop as fractions of the person box")
    g.add_argument("--clothes-ids", type=int, nargs="+", default=list(clothes_lib.LIP_CLOTHES),
                   help="LIP parsing labels that count as clothes")
    g.add_argument("--eval-batch-size", type=int, default=128, help="images per process at feature extraction")


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--branches", nargs="+", default=["bc"], choices=list(BRANCHES),
                   help="bc: BC-Net (both branches, fused); bf: biometric branch only; cf: clothes branch only; "
                        "several train one run each (<config>-bcnet, <config>-bf, <config>-cf)")
    g.add_argument("--backbone", default="resnet50", help="ResNet of the biometric branch")
    g.add_argument("--clothes-backbone", default="", help="ResNet of the clothes branch (default: --backbone)")
    g.add_argument("--weights", default="IMAGENET1K_V1", help="backbone weights: a torchvision name, a file, or '' "
                   "(random init)")
    g.add_argument("--last-stride", type=int, default=1, help="stride of ResNet's layer4 (1: a twice larger map)")
    g.add_argument("--mask", action=argparse.BooleanOptionalAction, default=True,
                   help="the biometric branch's mask module (--no-mask: global average pooling)")
    g.add_argument("--mask-hidden", type=int, default=256, help="channels of the mask module's conv unit")
    g.add_argument("--mask-maps", type=int, default=4, help="score maps of the mask module (M is their maximum)")
    g.add_argument("--feat-dim", type=int, default=2048, help="dimension of the fused feature f (Eq. 2)")


def add_loss_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("loss")
    g.add_argument("--alpha", type=float, default=1.0, help="weight of the triplet loss (Eq. 3)")
    g.add_argument("--margin", type=float, default=0.3, help="triplet margin eta (Eq. 3)")
    g.add_argument("--id-only", action="store_true", help="ID loss only (alpha = 0): the 'without triplet' row")
    g.add_argument("--fb-loss", action=argparse.BooleanOptionalAction, default=True,
                   help="L^{fB}, the biometric branch's own loss (Eq. 4); --no-fb-loss: L^f only")
    g.add_argument("--fb-triplet", action=argparse.BooleanOptionalAction, default=True,
                   help="L^{fB} includes the triplet term like L^f (else its ID term only)")
    g.add_argument("--label-smoothing", type=float, default=0.0, help="label smoothing of the ID losses")


def add_optim_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=120, help="training epochs")
    g.add_argument("--batch-size", type=int, default=64, help="global batch P x K (P identities x K images), "
                   "split over the processes by identity")
    g.add_argument("--num-instances", type=int, default=4, help="K: images per identity in a batch")
    g.add_argument("--epoch-rounds", type=int, default=1, help="permutations of the identities per epoch")
    g.add_argument("--lr", type=float, default=3.5e-4, help="Adam learning rate")
    g.add_argument("--weight-decay", type=float, default=5e-4, help="Adam weight decay")
    g.add_argument("--warmup-epochs", type=int, default=10, help="linear warm-up epochs")
    g.add_argument("--warmup-factor", type=float, default=0.01, help="learning-rate factor at the first epoch")
    g.add_argument("--milestones", type=int, nargs="*", default=[40, 70], help="epochs where the rate is multiplied by --gamma")
    g.add_argument("--gamma", type=float, default=0.1, help="learning-rate decay at each milestone")
    g.add_argument("--clip-grad", type=float, default=0.0, help="gradient-norm clipping (0: off)")
    g.add_argument("--eval-every", type=int, default=0, help="evaluate every N epochs as well (0: at the end only)")
    g.add_argument("--print-freq", type=int, default=20, help="progress refresh period in iterations")
    g.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")


def add_eval_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("evaluation")
    g.add_argument("--distance", default="euclidean", choices=["euclidean", "xqda"],
                   help="euclidean (squared, as torchreid) or XQDA fitted on the training features")
    g.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking (k1, k2, lambda)")
    g.add_argument("--same-camera-rule", default="market", choices=["market", "none"],
                   help="market: drop gallery items of the query's identity and camera; none: keep them")
    g.add_argument("--k1", type=int, default=20, help="re-ranking k1")
    g.add_argument("--k2", type=int, default=6, help="re-ranking k2")
    g.add_argument("--lambda-value", type=float, default=0.3, help="re-ranking lambda")
    g.add_argument("--xqda-lambda", type=float, default=0.001, help="XQDA regulariser of Sigma_I")
    g.add_argument("--xqda-dims", type=int, default=-1, help="XQDA subspace cap (-1: every eigenvalue > 1)")
    g.add_argument("--pixel-baseline", action=argparse.BooleanOptionalAction, default=True,
                   help="also score raw 16 x 8 RGB pixels with the Euclidean distance (baseline_pixel_mAP)")


def add_detector_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("clothes detector")
    g.add_argument("--detector", default="resnet50_fpn", choices=list(DETECTORS), help="Faster R-CNN backbone")
    g.add_argument("--detector-weights", default="COCO_V1", help="COCO_V1 (torchvision's COCO detector), an "
                   "ImageNet backbone name, a file, or '' (random init)")
    g.add_argument("--detector-epochs", type=int, default=6, help="detector training epochs")
    g.add_argument("--detector-batch-size", type=int, default=8, help="global detector batch")
    g.add_argument("--detector-lr", type=float, default=0.01, help="detector SGD learning rate")
    g.add_argument("--detector-min-size", type=int, default=256, help="Faster R-CNN resize: shorter side")
    g.add_argument("--detector-max-size", type=int, default=512, help="Faster R-CNN resize: longer side cap")
    g.add_argument("--detector-proposals", type=int, default=2000, help="RPN proposals after NMS (training)")
    g.add_argument("--detector-rois", type=int, default=512, help="sampled RoIs per image (box head)")
    g.add_argument("--box-file", default="", help="training boxes from this box file instead of parsing/")


def resolve_root(args) -> Path:
    """--data-root, or the toy data (written once, on rank 0) when it is empty."""
    if not args.data_root:
        if args.dataset != "cocas":
            raise DataError(f"--dataset {args.dataset} needs --data-root (the toy data is COCAS+ only)")
        from cocas_reid import toy

        root = Path(args.toy_root) if args.toy_root else REPO_ROOT / "data" / "toy" / PAPER
        if dist.is_main():
            toy.make_toy_dataset(root, train_ids=args.toy_train_ids, test_ids=args.toy_test_ids,
                                 query_only_ids=args.toy_query_only_ids, images_per_outfit=args.toy_images_per_outfit)
        dist.barrier()
        return root
    return Path(args.data_root)


def build_data(args, splits=("train", "query", "gallery")) -> Dataset:
    return load_dataset(args.dataset, resolve_root(args), args.variant, args.train_list, splits)


def uses_clothes(args) -> bool:
    return any(b in ("bc", "cf") for b in args.branches)


def build_model(args, branch: str, num_classes: int) -> BCNet:
    return BCNet(num_classes, branch, args.backbone, args.weights, args.clothes_backbone, args.last_stride,
                 args.mask, args.mask_hidden, args.mask_maps, args.feat_dim, fb_classifier=args.fb_loss)


def build_criterion(args) -> BCNetLoss:
    return BCNetLoss(args.alpha, args.margin, args.id_only, args.fb_loss, args.fb_triplet, args.label_smoothing)


def lr_factor(args, epoch: int) -> float:
    """Linear warm-up from --warmup-factor, then x gamma at each milestone (WarmupMultiStepLR)."""
    factor = args.gamma ** bisect.bisect_right(sorted(args.milestones), epoch)
    if epoch < args.warmup_epochs:
        alpha = epoch / args.warmup_epochs
        factor *= args.warmup_factor * (1 - alpha) + alpha
    return factor


def build_optimizer(args, model):
    params = [p for p in model.parameters() if p.requires_grad]
    try:  # the fused kernel (CPU and CUDA, torch >= 2.4) is several times faster than the per-tensor loop
        optimizer = torch.optim.Adam(params, lr=args.lr, weight_decay=args.weight_decay, fused=True)
    except (RuntimeError, TypeError):
        optimizer = torch.optim.Adam(params, lr=args.lr, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: lr_factor(args, e))
    return optimizer, scheduler


def train_loader(args, data: Dataset, needs_clothes: bool, device):
    k = args.num_instances
    if args.batch_size % k:
        raise ValueError(f"--batch-size {args.batch_size} must be P x K with K = --num-instances {k}")
    dist.per_process_batch(args.batch_size)  # the global batch rule (logs the split, checks divisibility)
    split = data.splits["train"]
    ds = ReidImages(data.root, split, person_transform(args.height, args.width, True, _pad(args), args.flip, args.erasing),
                    clothes_transform(args.template_size, True, args.pad, args.flip),
                    "template" if needs_clothes else "none", variant=data.variant)
    sampler = PKBatchSampler(split.labels, args.batch_size // k, k, seed=args.seed, rounds=args.epoch_rounds)
    loader = DataLoader(ds, batch_sampler=sampler, num_workers=args.workers, pin_memory=device.type == "cuda",
                        persistent_workers=args.workers > 0)
    return sampler, loader


def _pad(args) -> int:
    return max(1, round(args.pad * args.height / 256))


def eval_loader(args, data: Dataset, split: str, clothes: str, boxes=None) -> DataLoader:
    s = data.splits[split]
    ds = ReidImages(data.root, s, person_transform(args.height, args.width, False),
                    clothes_transform(args.template_size, False), clothes, boxes, data.variant)
    return DataLoader(ds, batch_size=args.eval_batch_size, sampler=dist.build_sampler(ds, shuffle=False),
                      num_workers=args.workers)


def pixel_loader(args, data: Dataset, split: str) -> DataLoader:
    ds = PixelImages(data.root, data.splits[split], data.variant)
    return DataLoader(ds, batch_size=args.eval_batch_size, sampler=dist.build_sampler(ds, shuffle=False),
                      num_workers=args.workers)


def gallery_boxes(args, data: Dataset) -> np.ndarray:
    """N x 4 clothes boxes of the gallery from --clothes-source (the box file for `detector`)."""
    box_file = None
    if args.clothes_source == "detector":
        box_file = Path(args.clothes_boxes) if args.clothes_boxes else clothes_lib.newest_box_file(args)
    return clothes_lib.boxes_for(data.splits["gallery"].files, args.clothes_source, data.root, data.variant,
                                 box_file, args.clothes_ids, args.fixed_box)
