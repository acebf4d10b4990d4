"""Builders shared by train.py and eval.py: the argument groups, the data, the model.

Hyper-parameters live here as argparse defaults with help= (the official EQL schedule: LVIS v0.5,
Mask R-CNN R-50-FPN, 16 images per batch, lr 0.02, 90k iterations, steps at 60k / 80k, linear
warm-up over 1k iterations, scale jitter 640-800, lambda 0.00177); a YAML in configs/ only changes
defaults.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch

from eql.data import ANN_FILES, LVISDetection, evaluation_gt, load_lvis, repeat_factors
from eql.loss import build_classification_loss
from eql.model import build_detector

log = logging.getLogger("eql")
REPO_ROOT = Path(__file__).resolve().parents[1]
LOSSES = ("ce", "sigmoid", "eql", "eqlv2")
MODEL_KEYS = ("arch", "backbone", "loss", "fpn_channels", "box_head_dim", "mask_head_dim", "tiny_widths",
              "anchor_sizes", "prior_prob", "dataset")


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data-root", default="", help="root holding lvis/ and coco/ (see README); empty = the toy data")
    g.add_argument("--dataset", default="lvis_v0.5", choices=sorted(ANN_FILES), help="annotation release")
    g.add_argument("--train-ann", default="", help="training annotations (default <data-root>/lvis/<release>_train.json)")
    g.add_argument("--val-ann", default="", help="validation annotations (default <data-root>/lvis/<release>_val.json)")
    g.add_argument("--image-root", default="", help="COCO image folders train2017/ val2017/ (default <data-root>/coco)")
    g.add_argument("--repeat-threshold", type=float, default=0.0,
                   help="repeat-factor sampling threshold t (0 = off; official EQL resampling 0.0005, detectron2 0.001)")
    g.add_argument("--min-size", type=int, nargs="+", default=[640, 672, 704, 736, 768, 800],
                   help="training shorter sides, one drawn per batch (scale jitter); the last is the test size")
    g.add_argument("--max-size", type=int, default=1333, help="longer-side cap")
    g.add_argument("--hflip-prob", type=float, default=0.5, help="horizontal flip probability in training")
    g.add_argument("--max-val-images", type=int, default=0, help="evaluate on the first N validation images (0 = all)")
    g.add_argument("--toy-root", default="", help="where the toy data is written (default <repo>/data/toy/eql)")
    g.add_argument("--toy-train-images", type=int, default=800, help="toy training images")
    g.add_argument("--toy-val-images", type=int, default=200, help="toy validation images")


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--arch", default="mask_rcnn", choices=["mask_rcnn", "faster_rcnn"], help="Mask or Faster R-CNN")
    g.add_argument("--backbone", default="resnet50", choices=["resnet50", "resnet101", "tiny"], help="FPN trunk")
    g.add_argument("--pretrained-backbone", default="imagenet",
                   help="imagenet (torchvision weights, downloaded on first use), none, or a local state-dict path")
    g.add_argument("--trainable-layers", type=int, default=3, help="ResNet stages trained (detectron2 FREEZE_AT=2: 3)")
    g.add_argument("--fpn-channels", type=int, default=256, help="FPN width (tiny trunk only; ResNet FPNs use 256)")
    g.add_argument("--tiny-widths", type=int, nargs=4, default=[16, 32, 64, 128], help="tiny trunk stage widths")
    g.add_argument("--box-head-dim", type=int, default=1024, help="box head: two FC layers of this width")
    g.add_argument("--mask-head-dim", type=int, default=256, help="mask head conv width")
    g.add_argument("--anchor-sizes", type=int, nargs="+", default=[32, 64, 128, 256, 512], help="one per FPN level")
    g.add_argument("--rpn-pre-nms-train", type=int, default=2000, help="RPN proposals per level before NMS (train)")
    g.add_argument("--rpn-post-nms-train", type=int, default=1000, help="RPN proposals per image after NMS (train)")
    g.add_argument("--rpn-pre-nms-test", type=int, default=1000, help="RPN proposals per level before NMS (test)")
    g.add_argument("--rpn-post-nms-test", type=int, default=1000, help="RPN proposals per image after NMS (test)")
    g.add_argument("--roi-batch-size", type=int, default=512, help="RoIs sampled per image (25 %% foreground)")
    g.add_argument("--score-thresh", type=float, default=1e-4, help="test score threshold (LVIS: 1e-4)")
    g.add_argument("--nms-thresh", type=float, default=0.5, help="test class-wise NMS IoU")
    g.add_argument("--detections-per-img", type=int, default=300, help="test detections per image (LVIS: 300)")
    g.add_argument("--prior-prob", type=float, default=0.001, help="sigmoid classifier bias init -log((1-p)/p)")


def add_loss_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("loss")
    g.add_argument("--loss", default="eql", choices=LOSSES, help="box classification loss")
    g.add_argument("--eql-lambda", type=float, default=0.00177,
                   help="EQL tail threshold on image frequency (v0.5: 0.00177 = the 915 r+c classes; v1: 0.0011)")
    g.add_argument("--image-level-rule", action=argparse.BooleanOptionalAction, default=False,
                   help="paper Sec. 4.2: weight 1 for categories verified present/absent in the image (off in the official code)")
    g.add_argument("--eqlv2-gamma", type=float, default=12.0, help="EQLv2 mapping steepness")
    g.add_argument("--eqlv2-mu", type=float, default=0.8, help="EQLv2 mapping centre")
    g.add_argument("--eqlv2-alpha", type=float, default=4.0, help="EQLv2 positive-weight scale")
    g.add_argument("--box-loss-beta", type=float, default=0.0, help="smooth-L1 beta of the box loss (detectron2: 0 = L1)")


def add_optim_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("optimisation (the official 1x schedule)")
    g.add_argument("--batch-size", type=int, default=16, help="images per iteration over all processes")
    g.add_argument("--lr", type=float, default=0.02, help="SGD learning rate for --batch-size images")
    g.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    g.add_argument("--weight-decay", type=float, default=1e-4, help="weight decay (not on norm layers)")
    g.add_argument("--iters", type=int, default=90000, help="training iterations")
    g.add_argument("--lr-steps", type=int, nargs="*", default=[60000, 80000], help="iterations where lr x lr-gamma")
    g.add_argument("--lr-gamma", type=float, default=0.1, help="lr decay factor")
    g.add_argument("--warmup-iters", type=int, default=1000, help="linear warm-up iterations")
    g.add_argument("--warmup-factor", type=float, default=0.001, help="lr factor at iteration 0")
    g.add_argument("--clip-grad", type=float, default=0.0, help="gradient norm clip (0 = off, as the official)")
    g.add_argument("--checkpoint-period", type=int, default=5000, help="iterations between checkpoints")
    g.add_argument("--eval-period", type=int, default=0, help="iterations between evaluations (0 = at the end only)")
    g.add_argument("--log-period", type=int, default=20, help="iterations between metrics.jsonl records")
    g.add_argument("--eval-batch-size", type=int, default=1, help="images per process at inference")
    g.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    g.add_argument("--find-unused-parameters", action="store_true", help="DDP find_unused_parameters")
    g.add_argument("--compare", nargs="*", default=[], choices=LOSSES,
                   help="train one model per listed loss (runs <config>[-<run-name>]-<loss>) and print them side by side")
    g.add_argument("--run-name", default="", help="sub-run name: the run folder is runs/eql/<config>-<run-name>/ "
                   "(default: runs/eql/<config>/); --compare appends the loss")


def sub_run(args) -> str | None:
    """The sub-run name of this run under ``shared.run`` (``runs/eql/<config>[-<sub>]/``): --run-name,
    and under --compare the loss appended (``toy-eql``, ``toy-seed1-eql``); None for the config's own run."""
    return args.run_name or None


def compare_args(args, loss: str):
    """The arguments of one --compare run: that loss, its own sub-run ``<run-name>-<loss>``."""
    import copy
    sub = copy.copy(args)
    sub.loss, sub.compare = loss, []
    sub.run_name = "-".join(x for x in (args.run_name, loss) if x)
    return sub


def toy_root(args) -> Path:
    return Path(args.toy_root) if args.toy_root else REPO_ROOT / "data" / "toy" / "eql"


def data_paths(args) -> tuple[Path, Path, Path]:
    """(train annotations, val annotations, image root); writes the toy data without --data-root."""
    if args.data_root:
        root = Path(args.data_root)
    else:
        from eql.toy import make_toy_dataset
        from shared import dist
        root = toy_root(args)
        if dist.is_main():
            make_toy_dataset(root, train_images=args.toy_train_images, val_images=args.toy_val_images)
        dist.barrier()
        if args.dataset != "lvis_v1":
            raise ValueError("the toy data is written as LVIS v1: use --dataset lvis_v1 (configs/toy.yaml does)")
    train_name, val_name = ANN_FILES[args.dataset]

    def ann(path, default):
        p = Path(path) if path else root / "lvis" / default
        return p if p.is_absolute() or p.exists() else root / "lvis" / p
    image_root = Path(args.image_root) if args.image_root else root / "coco"
    return ann(args.train_ann, train_name), ann(args.val_ann, val_name), image_root


def build_data(args, splits=("train", "val")) -> dict:
    """{'train', 'val': LVISDetection, 'val_gt': the evaluated GT (``eql.data.evaluation_gt``),
    'freq_info': [C], 'repeat_factors': [n train] or None, 'cat_ids', 'frequency'}. Category order,
    frequencies and r/c/f groups come from the training file (the val file's when only 'val' is
    built). The annotation files' own objects are dropped once packed: only the datasets' byte
    buffers and the compact evaluation GT stay. Validation images carry no GT masks (inference
    does not use them)."""
    train_ann, val_ann, image_root = data_paths(args)
    with_masks = args.arch == "mask_rcnn"
    out = {}
    ref = None
    if "train" in splits:
        lt = load_lvis(train_ann)
        out["train"] = LVISDetection(lt, image_root, train=True, with_masks=with_masks, hflip_prob=args.hflip_prob,
                                     seed=args.seed)
        out["repeat_factors"] = (repeat_factors(lt, out["train"].image_ids(), args.repeat_threshold)
                                 if args.repeat_threshold > 0 else None)
        ref = {"cat_ids": lt.cat_ids, "frequency": lt.frequency, "freq_info": lt.freq_info()}
        del lt
    if "val" in splits:
        lv = load_lvis(val_ann, keep_raw=True)
        out["val"] = LVISDetection(lv, image_root, train=False, with_masks=False, filter_empty=False,
                                   max_images=args.max_val_images)
        out["val_gt"] = evaluation_gt(lv, out["val"].image_ids(), with_segm=with_masks)
        if ref is not None and lv.cat_ids != ref["cat_ids"]:
            raise ValueError(f"{val_ann} and {train_ann} list different categories")
        ref = ref or {"cat_ids": lv.cat_ids, "frequency": lv.frequency, "freq_info": lv.freq_info()}
        del lv
    out.update(ref)
    return out


def build_model(args, data: dict) -> torch.nn.Module:
    num_classes = len(data["cat_ids"])
    cls_loss = build_classification_loss(args.loss, num_classes, freq_info=data["freq_info"], lambda_=args.eql_lambda,
                                         eqlv2_gamma=args.eqlv2_gamma, eqlv2_mu=args.eqlv2_mu,
                                         eqlv2_alpha=args.eqlv2_alpha)
    if args.loss == "eql" and "train" in data:  # (at evaluation the checkpoint's freq_info buffer is loaded)
        tail = np.asarray(data["freq_info"], np.float32) < args.eql_lambda
        groups = {g: int(sum(1 for t, f in zip(tail, data["frequency"]) if t and f == g)) for g in "rcf"}
        log.info("EQL: lambda %g selects %d of %d classes as tail (r %d, c %d, f %d)", args.eql_lambda,
                 int(tail.sum()), num_classes, groups["r"], groups["c"], groups["f"])
    return build_detector(
        num_classes, cls_loss, arch=args.arch, backbone=args.backbone,
        score_mode="softmax" if args.loss == "ce" else "sigmoid", pretrained_backbone=args.pretrained_backbone,
        trainable_layers=args.trainable_layers, min_size=tuple(args.min_size), max_size=args.max_size,
        score_thresh=args.score_thresh, nms_thresh=args.nms_thresh, detections_per_img=args.detections_per_img,
        prior_prob=args.prior_prob, box_loss_beta=args.box_loss_beta, use_image_labels=args.image_level_rule,
        rpn_pre_nms_top_n_train=args.rpn_pre_nms_train, rpn_post_nms_top_n_train=args.rpn_post_nms_train,
        rpn_pre_nms_top_n_test=args.rpn_pre_nms_test, rpn_post_nms_top_n_test=args.rpn_post_nms_test,
        roi_batch_size_per_image=args.roi_batch_size, anchor_sizes=tuple(args.anchor_sizes),
        tiny_widths=tuple(args.tiny_widths), fpn_channels=args.fpn_channels, box_head_dim=args.box_head_dim,
        mask_head_dim=args.mask_head_dim)


def lr_lambda(args):
    """detectron2's WarmupMultiStepLR: linear warm-up from warmup_factor, then x gamma at each step."""
    steps = sorted(args.lr_steps)

    def f(it: int) -> float:
        factor = args.lr_gamma ** sum(it >= s for s in steps)
        if it < args.warmup_iters:
            alpha = it / args.warmup_iters
            factor *= args.warmup_factor * (1 - alpha) + alpha
        return factor
    return f
