"""The detector: torchvision's Faster R-CNN FPN whose RoI heads train on label sets.

* ``LabelSetRoIHeads`` (a torchvision ``RoIHeads`` subclass): torchvision matches and samples the
  proposals (IoU 0.5, 512 per image, 25 % foreground) against each object's box; every sampled
  foreground proposal then takes its object's whole label set (``targets[i]['label_sets']``), background
  proposals the set {0}. The classification loss is ``loss.LabelSetLoss`` (concurrent softmax, softmax
  or sigmoid over C + 1 logits, background = column 0); class-specific box regression is trained for
  every label of the set (smooth L1, β = 1/9, averaged over the set, summed over proposals and divided by
  their number: torchvision's loss for a single label). At test time the scores are ``--test-score``
  (``loss.class_scores``); with ``--emit-ancestors`` every detection is copied to each ancestor class
  of the hierarchy (same box, same score) before the class-wise NMS, because the metric expands the
  ground truth to ancestors but never the predictions.
* Precision: the repository's rule (``shared.box_precision.fp32_box_arithmetic``): the RPN head and
  the box head autocast, while anchors, box decoding, proposal selection (top-k, NMS) and the RPN losses
  run in fp32; ``LabelSetRoIHeads`` decodes boxes, runs NMS and computes its losses in fp32 too
  (``shared.device.fp32``), so bf16 training does not snap coordinates to the bf16 grid.
* Backbones: ResNet-50 / ResNet-101 / ResNeXt-101 64x4d FPN (torchvision, ImageNet weights by name or a
  local state dict), or ``TinyTrunk`` for the CPU toy runs.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN, resnet_fpn_backbone
from torchvision.models.detection.faster_rcnn import TwoMLPHead
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.ops import boxes as box_ops

from openimages_det.loss import class_scores
from shared.box_precision import fp32_box_arithmetic
from shared.device import fp32

__all__ = ["BoxPredictor", "LabelSetRoIHeads", "TinyTrunk", "build_detector",
           "ancestor_table", "BACKBONES"]
log = logging.getLogger("openimages_det")
BACKBONES = ("resnet50", "resnet101", "resnext101_64x4d", "tiny")
SCORE_MODES = ("softmax", "concurrent", "sigmoid")


class BoxPredictor(nn.Module):
    """C + 1 class logits (background first) and class-specific deltas [(C + 1) x 4]; weights N(0, 0.01)
    and N(0, 0.001), biases 0 (mmdetection's and detectron2's initialisation)."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.cls_score = nn.Linear(in_channels, num_classes + 1)
        self.bbox_pred = nn.Linear(in_channels, (num_classes + 1) * 4)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.cls_score.bias)
        nn.init.zeros_(self.bbox_pred.bias)

    def forward(self, x):
        x = x.flatten(start_dim=1)
        return self.cls_score(x), self.bbox_pred(x)


def ancestor_table(class_names: list, hierarchy) -> tuple[torch.Tensor, torch.Tensor]:
    """(ptr [C + 2], idx): the ancestors of class k (1..C) are ``idx[ptr[k]:ptr[k + 1]]`` (class indices)."""
    index = {c: i + 1 for i, c in enumerate(class_names)}
    ptr, idx = [0, 0], []
    for c in class_names:
        anc = [index[a] for a in hierarchy.ancestors(c) if a in index] if (hierarchy is not None and c in hierarchy) else []
        idx.extend(anc)
        ptr.append(len(idx))
    return torch.tensor(ptr, dtype=torch.int64), torch.tensor(idx, dtype=torch.int64)


class LabelSetRoIHeads(RoIHeads):
    """torchvision ``RoIHeads`` training on label sets and scoring with ``score_mode`` (module docstring)."""

    def __init__(self, *args, cls_loss: nn.Module, score_mode: str = "softmax", emit_ancestors: bool = False,
                 ancestors: tuple | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if score_mode not in SCORE_MODES:
            raise ValueError(f"score mode {score_mode!r}: use one of {SCORE_MODES}")
        self.cls_loss = cls_loss
        self.score_mode = score_mode
        self.emit_ancestors = bool(emit_ancestors)
        num_classes = self.box_predictor.num_classes
        ptr, idx = ancestors if ancestors is not None else (torch.zeros(num_classes + 2, dtype=torch.int64),
                                                            torch.zeros(0, dtype=torch.int64))
        if len(ptr) != num_classes + 2:
            raise ValueError(f"ancestor table for {len(ptr) - 2} classes, the predictor has {num_classes}")
        self.register_buffer("anc_ptr", ptr.clone())
        self.register_buffer("anc_idx", idx.clone())

    @classmethod
    def from_roi_heads(cls, rh: RoIHeads, **kwargs) -> LabelSetRoIHeads:
        """The same pooler, head, predictor and sampling as a torchvision ``RoIHeads``."""
        return cls(rh.box_roi_pool, rh.box_head, rh.box_predictor, rh.proposal_matcher.high_threshold,
                   rh.proposal_matcher.low_threshold, rh.fg_bg_sampler.batch_size_per_image,
                   rh.fg_bg_sampler.positive_fraction, rh.box_coder.weights, rh.score_thresh, rh.nms_thresh,
                   rh.detections_per_img, **kwargs)

    @property
    def num_classes(self) -> int:
        return self.box_predictor.num_classes

    def sample_label_sets(self, targets, matched_idxs, labels) -> torch.Tensor:
        """[N, C + 1] label sets of the sampled proposals: the matched object's set, {0} for background."""
        out = []
        for t, m, lab in zip(targets, matched_idxs, labels):
            sets = t["label_sets"].bool()
            if sets.shape[1] != self.num_classes + 1:
                raise ValueError(f"label_sets have {sets.shape[1]} columns, expected C + 1 = {self.num_classes + 1}")
            bg = torch.zeros(len(lab), self.num_classes + 1, dtype=torch.bool, device=lab.device)
            bg[:, 0] = True
            fg = sets[m] if len(sets) else bg
            out.append(torch.where((lab > 0)[:, None], fg, bg))
        return torch.cat(out, 0)

    def box_losses(self, class_logits, box_regression, label_sets, regression_targets) -> dict:
        n = len(label_sets)
        loss_cls = self.cls_loss(class_logits.float(), label_sets)
        deltas = box_regression.float().reshape(n, -1, 4)
        reg = torch.cat(regression_targets, 0)
        p, c = torch.nonzero(label_sets[:, 1:], as_tuple=True)
        c = c + 1
        per_pair = F.smooth_l1_loss(deltas[p, c], reg[p], beta=1 / 9, reduction="none").sum(1)
        weight = 1.0 / label_sets[p, 1:].sum(1).float()
        loss_box = (per_pair * weight).sum() / max(n, 1)
        return {"loss_classifier": loss_cls, "loss_box_reg": loss_box}

    def postprocess_detections(self, class_logits, box_regression, proposals, image_shapes):
        """Per image: boxes [K, 4], scores [K], labels [K] in 1..C (K <= detections_per_img)."""
        c = self.num_classes
        pred_boxes = self.box_coder.decode(box_regression.float(), proposals)[:, 1:]        # [N, C, 4]
        rates = getattr(self.cls_loss, "rates", None)
        scores = class_scores(class_logits.float(), self.score_mode, rates)                  # [N, C]
        counts = [len(p) for p in proposals]
        out_boxes, out_scores, out_labels = [], [], []
        for boxes, sc, shape in zip(pred_boxes.split(counts), scores.split(counts), image_shapes):
            boxes = box_ops.clip_boxes_to_image(boxes, shape)
            labels = torch.arange(1, c + 1, device=sc.device).view(1, -1).expand_as(sc)
            boxes, sc, labels = boxes.reshape(-1, 4), sc.reshape(-1), labels.reshape(-1)
            keep = torch.where(sc > self.score_thresh)[0]
            boxes, sc, labels = boxes[keep], sc[keep], labels[keep]
            keep = box_ops.remove_small_boxes(boxes, min_size=1e-2)
            boxes, sc, labels = boxes[keep], sc[keep], labels[keep]
            if self.emit_ancestors and len(self.anc_idx):
                boxes, sc, labels = self._with_ancestors(boxes, sc, labels)
            keep = box_ops.batched_nms(boxes, sc, labels, self.nms_thresh)[: self.detections_per_img]
            out_boxes.append(boxes[keep])
            out_scores.append(sc[keep])
            out_labels.append(labels[keep])
        return out_boxes, out_scores, out_labels

    def _with_ancestors(self, boxes, scores, labels):
        """Each candidate plus one copy per ancestor class of its label (same box and score)."""
        n_anc = self.anc_ptr[labels + 1] - self.anc_ptr[labels]
        src = torch.repeat_interleave(torch.arange(len(labels), device=labels.device), n_anc)
        start = torch.repeat_interleave(self.anc_ptr[labels], n_anc)
        within = torch.arange(len(src), device=labels.device) - torch.repeat_interleave(torch.cumsum(n_anc, 0) - n_anc, n_anc)
        anc = self.anc_idx[start + within]
        return (torch.cat([boxes, boxes[src]]), torch.cat([scores, scores[src]]), torch.cat([labels, anc]))

    def forward(self, features, proposals, image_shapes, targets=None):
        if self.training:
            if targets is None:
                raise ValueError("targets are needed in training")
            proposals, matched_idxs, labels, regression_targets = self.select_training_samples(proposals, targets)
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(box_features)
        device = class_logits.device
        with fp32(device):
            if self.training:
                label_sets = self.sample_label_sets(targets, matched_idxs, labels)
                return [], self.box_losses(class_logits, box_regression, label_sets, regression_targets)
            boxes, scores, labels_out = self.postprocess_detections(class_logits, box_regression, proposals,
                                                                    image_shapes)
        return [{"boxes": b, "labels": lab, "scores": s} for b, s, lab in zip(boxes, scores, labels_out)], {}


class _Stage(nn.Sequential):
    def __init__(self, cin, cout, stride):
        super().__init__(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class TinyTrunk(nn.Module):
    """A small conv trunk for CPU toy runs (no pretrained weights): a stride-2 stem and four stages at
    strides 4, 8, 16, 32 named ``layer1..layer4`` like a ResNet's, so torchvision's FPN takes it."""

    def __init__(self, widths=(16, 32, 48, 64)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 2, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                  nn.ReLU(inplace=True))
        self.layer1 = _Stage(widths[0], widths[0], 2)
        self.layer2 = _Stage(widths[0], widths[1], 2)
        self.layer3 = _Stage(widths[1], widths[2], 2)
        self.layer4 = _Stage(widths[2], widths[3], 2)
        self.widths = tuple(widths)

    def forward(self, x):
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))


def _backbone(name: str, pretrained: str, trainable_layers: int, tiny_widths, fpn_channels: int):
    if name == "tiny":
        trunk = TinyTrunk(tuple(tiny_widths))
        return BackboneWithFPN(trunk, {f"layer{i}": str(i - 1) for i in range(1, 5)}, list(trunk.widths), fpn_channels)
    if name not in BACKBONES:
        raise ValueError(f"backbone {name!r}: use one of {BACKBONES}")
    import torchvision
    enum = {"resnet50": torchvision.models.ResNet50_Weights, "resnet101": torchvision.models.ResNet101_Weights,
            "resnext101_64x4d": torchvision.models.ResNeXt101_64X4D_Weights}[name]
    weights, local = None, None
    if pretrained in ("", "none"):
        trainable_layers = 5                                 # nothing to keep frozen (weights from scratch)
    elif Path(pretrained).suffix in (".pt", ".pth") or Path(pretrained).is_file():
        local = pretrained                                   # a local torchvision-style state dict
    elif pretrained == "imagenet":
        weights = enum.DEFAULT                               # torchvision's weights, downloaded on first use
    else:                                                    # a weight name, e.g. ResNet50_Weights.IMAGENET1K_V2
        try:
            weights = enum[pretrained.split(".")[-1]]
        except KeyError:
            raise ValueError(f"--pretrained {pretrained!r}: not a file and not one of {[w.name for w in enum]}") from None
    body = resnet_fpn_backbone(backbone_name=name, weights=weights, trainable_layers=trainable_layers)
    if local:
        from shared.checkpoint import load_checkpoint
        sd = load_checkpoint(local)
        sd = sd.get("model", sd) if isinstance(sd, dict) else sd
        missing, unexpected = body.body.load_state_dict(sd, strict=False)
        if missing:
            raise ValueError(f"{pretrained}: not a {name} state dict (missing {missing[:5]} ...)")
        log.info("backbone weights from %s (%d keys unused, e.g. the fc layer)", local, len(unexpected))
    return body


def build_detector(num_classes: int, cls_loss: nn.Module, *, backbone: str = "resnet50", pretrained: str = "imagenet",
                   trainable_layers: int = 3, score_mode: str = "softmax", emit_ancestors: bool = False,
                   ancestors=None, min_size=(800,), max_size: int = 1024, anchor_sizes=(32, 64, 128, 256, 512),
                   rpn_pre_nms_train: int = 2000, rpn_post_nms_train: int = 1000, rpn_pre_nms_test: int = 1000,
                   rpn_post_nms_test: int = 1000, roi_batch_size: int = 512, score_thresh: float = 0.001,
                   nms_thresh: float = 0.5, detections_per_img: int = 100, tiny_widths=(16, 32, 48, 64),
                   fpn_channels: int = 256, box_head_dim: int = 1024) -> FasterRCNN:
    """Faster R-CNN FPN with ``LabelSetRoIHeads`` and the fp32 box-arithmetic rule (module docstring).
    ``min_size``: training shorter sides (one drawn per batch); evaluation uses the last."""
    body = _backbone(backbone, pretrained, trainable_layers, tiny_widths, fpn_channels)
    anchors = AnchorGenerator(tuple((int(s),) for s in anchor_sizes), ((0.5, 1.0, 2.0),) * len(anchor_sizes))
    box_head = TwoMLPHead(body.out_channels * 7 * 7, box_head_dim)
    predictor = BoxPredictor(box_head_dim, num_classes)
    model = FasterRCNN(body, num_classes=None, min_size=tuple(int(s) for s in min_size), max_size=int(max_size),
                       rpn_anchor_generator=anchors, box_head=box_head, box_predictor=predictor,
                       box_score_thresh=score_thresh, box_nms_thresh=nms_thresh, box_detections_per_img=detections_per_img,
                       box_batch_size_per_image=roi_batch_size)
    model.rpn = RegionProposalNetwork(
        anchors, RPNHead(body.out_channels, anchors.num_anchors_per_location()[0]), 0.7, 0.3, 256, 0.5,
        dict(training=rpn_pre_nms_train, testing=rpn_pre_nms_test),
        dict(training=rpn_post_nms_train, testing=rpn_post_nms_test), 0.7)
    model.roi_heads = LabelSetRoIHeads.from_roi_heads(model.roi_heads, cls_loss=cls_loss, score_mode=score_mode,
                                                      emit_ancestors=emit_ancestors, ancestors=ancestors)
    return fp32_box_arithmetic(model)   # fp32 anchors, decoding, proposal selection, RPN losses

