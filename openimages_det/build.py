"""Builders shared by train.py and eval.py: the argument groups, the data, the model.

Hyper-parameters are argparse defaults with help= (the paper does not publish its recipe: the defaults
follow mmdetection's Open Images Faster R-CNN, global batch 64, SGD lr 0.08, weight decay 1e-4, 12
epochs with steps at 8 and 11, linear warm-up over 26k iterations from lr/64, gradient clipping at 35,
images 800 x 1024); a YAML in configs/ only changes defaults.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch

from openimages_det.data import (
    RELEASES,
    OpenImagesImages,
    OpenImagesTrain,
    build_records,
    check_images,
    class_statistics,
    concurrent_rates,
    list_images,
    load_classes,
    load_split_tables,
    resolve_files,
)
from openimages_det.hierarchy import load_hierarchy
from openimages_det.loss import LOSSES, LabelSetLoss
from openimages_det.model import BACKBONES, ancestor_table, build_detector
from openimages_det.sampler import HYBRIDS, SAMPLINGS
from shared import dist

log = logging.getLogger("openimages_det")
REPO_ROOT = Path(__file__).resolve().parents[1]
PAPER = "openimages_det"
# the rows of the paper's ablation as option sets (train.py --variants; configs/oid_*.yaml set the same)
VARIANTS = {
    "softmax": dict(loss="softmax", sampling="natural", hybrid="none"),
    "sigmoid": dict(loss="sigmoid", sampling="natural", hybrid="none"),
    "class_aware": dict(loss="softmax", sampling="class_aware", hybrid="none"),
    "soft": dict(loss="softmax", sampling="soft", hybrid="none"),
    "soft_hybrid": dict(loss="softmax", sampling="soft", hybrid="mix"),
    "concurrent": dict(loss="concurrent", sampling="natural", hybrid="none"),
    "full": dict(loss="concurrent", sampling="soft", hybrid="mix"),
}


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data-root", default="", help="Open Images root (see README); empty = the embedded toy data")
    g.add_argument("--release", default="challenge2019", choices=sorted(RELEASES), help="annotation file names")
    g.add_argument("--classes-file", default="", help="class descriptions CSV (default: the release's)")
    g.add_argument("--hierarchy-file", default="", help="hierarchy JSON (default: the release's)")
    for flag, split in (("train", "training"), ("val", "validation"), ("test", "test")):
        g.add_argument(f"--{flag}-boxes", default="", help=f"{split} boxes CSV (default: the release's)")
        g.add_argument(f"--{flag}-image-labels", default="", help=f"{split} image-level labels CSV")
        g.add_argument(f"--{flag}-images", default="", help=f"{split} image folder (default <data-root>/<split>)")
    g.add_argument("--concurrent-iou", type=float, default=0.95,
                   help="boxes of one image with IoU >= this are one object with a label set")
    g.add_argument("--train-labels", default="annotated", choices=["annotated", "expanded"],
                   help="label sets as annotated, or expanded with every ancestor of the hierarchy")
    g.add_argument("--min-size", type=int, nargs="+", default=[800], help="training shorter sides (one per batch); "
                   "the last is the test size")
    g.add_argument("--max-size", type=int, default=1024, help="longer-side cap")
    g.add_argument("--hflip-prob", type=float, default=0.5, help="horizontal flip probability in training")
    g.add_argument("--max-val-images", type=int, default=0, help="evaluate on the first N validation images (0 = all)")
    g.add_argument("--toy-root", default="", help="where the toy data is written (default <repo>/data/toy/openimages_det)")
    g.add_argument("--toy-train-images", type=int, default=900, help="toy training images")
    g.add_argument("--toy-val-images", type=int, default=300, help="toy validation images")
    g.add_argument("--toy-test-images", type=int, default=40, help="toy test images")


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--backbone", default="resnet50", choices=BACKBONES, help="FPN trunk")
    g.add_argument("--pretrained", default="imagenet", help="none | imagenet (torchvision weights, downloaded on "
                   "first use) | a weight name (ResNet50_Weights.IMAGENET1K_V2) | a local state-dict file")
    g.add_argument("--trainable-layers", type=int, default=3, help="ResNet stages trained (mmdetection frozen_stages=1)")
    g.add_argument("--fpn-channels", type=int, default=256, help="FPN width of the tiny trunk (ResNets use 256)")
    g.add_argument("--tiny-widths", type=int, nargs=4, default=[16, 32, 48, 64], help="tiny trunk stage widths")
    g.add_argument("--box-head-dim", type=int, default=1024, help="box head: two FC layers of this width")
    g.add_argument("--anchor-sizes", type=int, nargs=5, default=[32, 64, 128, 256, 512], help="one per FPN level")
    g.add_argument("--rpn-pre-nms-train", type=int, default=2000, help="RPN proposals per level before NMS (train)")
    g.add_argument("--rpn-post-nms-train", type=int, default=1000, help="RPN proposals per image after NMS (train)")
    g.add_argument("--rpn-pre-nms-test", type=int, default=1000, help="RPN proposals per level before NMS (test)")
    g.add_argument("--rpn-post-nms-test", type=int, default=1000, help="RPN proposals per image after NMS (test)")
    g.add_argument("--roi-batch-size", type=int, default=512, help="RoIs sampled per image (25 %% foreground)")
    g.add_argument("--score-thresh", type=float, default=0.001, help="test score threshold")
    g.add_argument("--nms-thresh", type=float, default=0.5, help="test class-wise NMS IoU")
    g.add_argument("--detections-per-img", type=int, default=100, help="test detections kept per image")
    g.add_argument("--emit-ancestors", action=argparse.BooleanOptionalAction, default=True,
                   help="copy every detection to each ancestor class (the metric expands only the ground truth)")
    g.add_argument("--loss", default="concurrent", choices=LOSSES, help="box classification loss")
    g.add_argument("--test-score", default="auto", choices=["auto", "softmax", "concurrent", "sigmoid"],
                   help="test-time class scores (auto: sigmoid for the sigmoid loss, else softmax as the paper)")


def add_sampling_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sampling (Eq. S) and the hybrid scheduler")
    g.add_argument("--sampling", default="natural", choices=SAMPLINGS,
                   help="natural | class_aware (lambda = 0) | soft (p(c) ∝ N_c^lambda)")
    g.add_argument("--soft-lambda", type=float, default=0.5, help="soft-balance exponent lambda (0 class-aware, 1 ≈ natural)")
    g.add_argument("--hybrid", default="none", choices=HYBRIDS,
                   help="none | switch (natural from --switch-at on) | mix (a natural share of every batch)")
    g.add_argument("--switch-at", type=int, default=8, help="hybrid switch: first epoch sampled naturally")
    g.add_argument("--natural-share", type=float, default=0.5, help="hybrid mix: share of each batch drawn naturally")


def add_optim_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("optimisation (mmdetection's Open Images recipe)")
    g.add_argument("--batch-size", type=int, default=64, help="global batch: images per step over all processes")
    g.add_argument("--lr", type=float, default=0.08, help="SGD learning rate for --batch-size images")
    g.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    g.add_argument("--weight-decay", type=float, default=1e-4, help="weight decay")
    g.add_argument("--epochs", type=int, default=12, help="training epochs (an epoch = len(images) // batch steps)")
    g.add_argument("--lr-steps", type=int, nargs="*", default=[8, 11], help="epochs at which lr x --lr-gamma")
    g.add_argument("--lr-gamma", type=float, default=0.1, help="lr decay factor")
    g.add_argument("--warmup-iters", type=int, default=26000, help="linear warm-up iterations")
    g.add_argument("--warmup-ratio", type=float, default=1 / 64, help="lr factor at iteration 0")
    g.add_argument("--clip-grad", type=float, default=35.0, help="gradient norm clip (0 = off)")
    g.add_argument("--checkpoint-period", type=int, default=0, help="also checkpoint every N iterations (0: per epoch)")
    g.add_argument("--log-period", type=int, default=20, help="iterations between metrics.jsonl records")
    g.add_argument("--eval-batch-size", type=int, default=2, help="images per process at inference")
    g.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    g.add_argument("--variants", nargs="*", default=[], choices=sorted(VARIANTS),
                   help="train one model per variant (run names <config>-<variant>) and print them side by side")


def add_report_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("reporting")
    g.add_argument("--rare-fraction", type=float, default=1 / 3,
                   help="mAP_rare: this share of the evaluated classes with the fewest training images")
    g.add_argument("--multilabel-min-rate", type=float, default=0.1,
                   help="mAP_multilabel: classes whose objects carry > 1 annotated label at least this often")
    g.add_argument("--baseline-random", type=int, default=100,
                   help="random boxes per image for baseline_random_mAP (0 = skip)")


def test_score(args) -> str:
    if args.test_score != "auto":
        return args.test_score
    return "sigmoid" if args.loss == "sigmoid" else "softmax"


def toy_root(args) -> Path:
    return Path(args.toy_root) if args.toy_root else REPO_ROOT / "data" / "toy" / PAPER


def ensure_toy(args) -> None:
    """Without --data-root: write the toy data once (rank 0) and point the run at it (V6 names)."""
    if args.data_root:
        return
    from openimages_det.toy import make_toy_dataset
    root = toy_root(args)
    if dist.is_main():
        make_toy_dataset(root, train_images=args.toy_train_images, val_images=args.toy_val_images,
                         test_images=args.toy_test_images)
    dist.barrier()
    args.data_root, args.release = str(root), "v6"


def build_data(args, splits=("train", "validation")) -> dict:
    """{'class_names', 'hierarchy', 'records', 'stats', 'rates', 'train', 'val', 'val_boxes', 'val_labels'}.

    Everything is read and checked before the first iteration: unknown labels, bad coordinates,
    missing columns and missing images stop the run with the file and the line."""
    ensure_toy(args)
    files = {s: resolve_files(args, s) for s in splits}
    first = files[splits[0]]
    class_names = load_classes(first)
    hierarchy = load_hierarchy(first["hierarchy"])
    out = {"class_names": class_names, "hierarchy": hierarchy, "files": files}
    if "train" in splits:
        boxes, _ = load_split_tables(files["train"], class_names, with_labels=False)
        rec = build_records(boxes, class_names, hierarchy, args.concurrent_iou, expand=args.train_labels == "expanded")
        if rec.skipped_boxes:
            log.warning("%s: skipped %d invalid training boxes (XMin >= XMax or YMin >= YMax)",
                        files["train"]["boxes"], rec.skipped_boxes)
        check_images(files["train"]["images"], rec.image_ids, "training")
        out.update(records=rec, stats=class_statistics(rec, class_names, hierarchy), rates=concurrent_rates(rec),
                   train=OpenImagesTrain(rec, files["train"]["images"]))
        sizes = np.diff(rec.ann_ptr)
        log.info("training: %d images, %d objects (%d with several labels), %d classes", len(rec), len(sizes),
                 int((sizes > 1).sum()), len(class_names))
    for split in ("validation", "test"):
        if split not in splits:
            continue
        if split == "test" and not Path(files[split]["boxes"]).is_file():
            # the Challenge test set comes without annotations: predict every image of the folder
            boxes = labels = None
            ids = list_images(files[split]["images"])
        else:
            boxes, labels = load_split_tables(files[split], class_names)
            ids = sorted(set(boxes["ImageID"]) | set(labels["ImageID"]))
        if args.max_val_images:
            ids = ids[: args.max_val_images]
            keep = set(ids)
            if boxes is not None:
                boxes, labels = boxes[boxes["ImageID"].isin(keep)], labels[labels["ImageID"].isin(keep)]
        check_images(files[split]["images"], ids, split)
        key = "val" if split == "validation" else "test"
        out[key] = OpenImagesImages(ids, files[split]["images"])
        if boxes is not None:
            out[f"{key}_boxes"], out[f"{key}_labels"] = boxes.reset_index(drop=True), labels.reset_index(drop=True)
    return out


def build_model(args, class_names: list, hierarchy, rates: torch.Tensor | None = None) -> torch.nn.Module:
    cls_loss = LabelSetLoss(args.loss, len(class_names), rates)
    return build_detector(
        len(class_names), cls_loss, backbone=args.backbone, pretrained=args.pretrained,
        trainable_layers=args.trainable_layers, score_mode=test_score(args), emit_ancestors=args.emit_ancestors,
        ancestors=ancestor_table(class_names, hierarchy), min_size=tuple(args.min_size), max_size=args.max_size,
        anchor_sizes=tuple(args.anchor_sizes), rpn_pre_nms_train=args.rpn_pre_nms_train,
        rpn_post_nms_train=args.rpn_post_nms_train, rpn_pre_nms_test=args.rpn_pre_nms_test,
        rpn_post_nms_test=args.rpn_post_nms_test, roi_batch_size=args.roi_batch_size, score_thresh=args.score_thresh,
        nms_thresh=args.nms_thresh, detections_per_img=args.detections_per_img, tiny_widths=tuple(args.tiny_widths),
        fpn_channels=args.fpn_channels, box_head_dim=args.box_head_dim)


def lr_lambda(args, iters_per_epoch: int):
    """mmdetection's step policy: linear warm-up from --warmup-ratio over --warmup-iters iterations, then
    x --lr-gamma at the start of each epoch in --lr-steps (as a function of the global iteration)."""
    steps = sorted(args.lr_steps)

    def f(it: int) -> float:
        epoch = it // max(1, iters_per_epoch)
        factor = args.lr_gamma ** sum(epoch >= s for s in steps)
        if it < args.warmup_iters:
            factor *= 1 - (1 - it / args.warmup_iters) * (1 - args.warmup_ratio)
        return factor
    return f
