"""The clothes detector: torchvision's Faster R-CNN with one foreground class, trained on clothes
boxes derived from human parsing (BC-Net, Sec. 4.2), then run on the gallery images.

Training and detection run in fp32 even on CUDA: the detector is small next to the re-id
training, and fp32 keeps anchor decoding and NMS exact (the repository's precision rule).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch.utils.data import DataLoader
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.transforms import functional as TF

from cocas_reid.data import image_path
from cocas_reid.dataset import open_rgb
from shared import dist
from shared.finite import check_finite
from shared.log import MetricLogger

__all__ = ["DETECTORS", "build_detector", "BoxDataset", "collate", "train_detector_epoch", "detect", "box_iou"]

DETECTORS = ("resnet50_fpn", "resnet34_fpn", "resnet18_fpn")
log = logging.getLogger("cocas_reid")


def build_detector(arch: str = "resnet50_fpn", weights: str = "", min_size: int = 256, max_size: int = 512,
                   proposals: int = 2000, rois: int = 512) -> FasterRCNN:
    """Faster R-CNN (FPN) with 2 classes (background, clothes).

    weights: '' (random init), `COCO_V1` / `DEFAULT` (torchvision's COCO detector, resnet50_fpn
    only; the box predictor is replaced), an ImageNet backbone name (`IMAGENET1K_V1`), or a file
    holding a state dict of this detector. `proposals`: RPN proposals kept after NMS in training
    (half at test), `rois`: sampled RoIs per image for the box head.
    """
    if arch not in DETECTORS:
        raise ValueError(f"--detector {arch!r}: expected one of {DETECTORS}")
    kw = dict(min_size=min_size, max_size=max_size, rpn_pre_nms_top_n_train=proposals,
              rpn_post_nms_top_n_train=proposals, rpn_pre_nms_top_n_test=max(proposals // 2, 1),
              rpn_post_nms_top_n_test=max(proposals // 2, 1), box_batch_size_per_image=rois)
    is_file = bool(weights) and Path(weights).is_file()
    name = "" if is_file else weights
    if arch == "resnet50_fpn" and name in ("COCO_V1", "DEFAULT"):
        w = torchvision.models.detection.FasterRCNN_ResNet50_FPN_Weights[name]
        model = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=w, **kw)
        model.roi_heads.box_predictor = FastRCNNPredictor(model.roi_heads.box_predictor.cls_score.in_features, 2)
        return model
    backbone_w = None
    if name:
        base = arch.removesuffix("_fpn")
        try:
            backbone_w = torchvision.models.get_model_weights(base)[name]
        except KeyError:
            raise ValueError(f"--detector-weights {weights!r}: not a file, COCO_V1, or a weight name of {base}") from None
    backbone = resnet_fpn_backbone(backbone_name=arch.removesuffix("_fpn"), weights=backbone_w, trainable_layers=5)
    model = FasterRCNN(backbone, num_classes=2, **kw)
    if is_file:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        state = state.get("model", state) if isinstance(state, dict) else state
        res = model.load_state_dict(state, strict=False)
        if res.missing_keys or res.unexpected_keys:
            log.warning("%s: missing keys %s, unexpected keys %s", weights, res.missing_keys[:20], res.unexpected_keys[:20])
    return model


class BoxDataset(torch.utils.data.Dataset):
    """(image tensor in [0, 1], target {boxes: 1 x 4, labels: [1]}, index); training flips."""

    def __init__(self, root, files, boxes=None, variant: str = "raw", train: bool = False, flip: float = 0.5):
        self.root, self.files, self.variant, self.train, self.flip = root, list(files), variant, train, flip
        self.boxes = None if boxes is None else np.asarray(boxes, np.float32).reshape(-1, 4)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        img = TF.to_tensor(open_rgb(image_path(self.root, self.files[i], self.variant)))
        target = {}
        if self.boxes is not None:
            box = torch.from_numpy(self.boxes[i].copy())[None]
            if self.train and torch.rand(()) < self.flip:
                img = img.flip(-1)
                w = img.shape[-1]
                box = torch.stack([w - box[:, 2], box[:, 1], w - box[:, 0], box[:, 3]], dim=1)
            target = {"boxes": box, "labels": torch.ones(1, dtype=torch.int64)}
        return img, target, i


def collate(batch):
    return tuple(zip(*batch))


def train_detector_epoch(model, loader, optimizer, device, epoch: int, print_freq: int = 20) -> dict:
    model.train()
    meters = MetricLogger()
    for images, targets, _ in meters.log_every(loader, print_freq, header=f"detector {epoch}"):
        images = [im.to(device) for im in images]
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        losses = model(images, targets)
        total = sum(losses.values())
        check_finite(losses, f"detector epoch {epoch}", total)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        meters.update(n=len(images), loss=total.detach(), lr=optimizer.param_groups[0]["lr"])
    return dist.reduce_dict(meters.averages())


@torch.no_grad()
def detect(model, root, files, device, variant: str = "raw", batch_size: int = 8, workers: int = 0):
    """(boxes N x 4 with NaN rows where nothing was detected, scores N) of the best clothes box of
    every image, on rank 0 (None elsewhere); inference is sharded over the ranks."""
    model.eval()
    ds = BoxDataset(root, files, variant=variant)
    loader = DataLoader(ds, batch_size=batch_size, sampler=dist.build_sampler(ds, shuffle=False),
                        num_workers=workers, collate_fn=collate)
    idx, boxes, scores = [], [], []
    for images, _, index in loader:
        for out, i in zip(model([im.to(device) for im in images]), index):
            keep = out["labels"] == 1
            b, s = out["boxes"][keep], out["scores"][keep]
            j = int(s.argmax()) if s.numel() else -1
            idx.append(i)
            boxes.append(b[j].float().cpu().numpy() if j >= 0 else np.full(4, np.nan, np.float32))
            scores.append(float(s[j]) if j >= 0 else 0.0)
    parts = dist.all_gather_object((idx, boxes, scores))
    if not dist.is_main():
        return None
    all_boxes, all_scores = np.full((len(files), 4), np.nan, np.float32), np.zeros(len(files))
    for ii, bb, ss in parts:
        for i, b, s in zip(ii, bb, ss):
            all_boxes[i], all_scores[i] = b, s
    return all_boxes, all_scores


def _area(x: np.ndarray) -> np.ndarray:
    return (x[:, 2] - x[:, 0]).clip(0) * (x[:, 3] - x[:, 1]).clip(0)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of aligned box pairs (N x 4 each); NaN boxes give 0."""
    a, b = np.nan_to_num(np.asarray(a, np.float64)), np.nan_to_num(np.asarray(b, np.float64))
    ix = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = ix * iy
    union = _area(a) + _area(b) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
