"""The detector: torchvision's Mask / Faster R-CNN with a C-logit sigmoid box classifier.

torchvision's ``RoIHeads`` calls the module-level ``fastrcnn_loss`` (softmax cross-entropy) and
its ``postprocess_detections`` applies a softmax with the background in column 0. EQL needs C
sigmoid logits and no background column, so ``EQLRoIHeads`` overrides ``forward`` (the configured
classification loss, class-specific box regression, torchvision's mask branch unchanged) and
``postprocess_detections`` (sigmoid scores). Everything else is torchvision's: backbone + FPN, RPN,
proposal matching and sampling, RoIAlign, box coder, mask head; under bf16 autocast the anchors,
box decoding, proposal selection and NMS run in fp32 (``shared.box_precision``).

Label conventions: torchvision targets carry labels 1..C (0 = background) and so do the
detections this model returns; the losses take the official convention (0..C-1, C = background).
The mask predictor keeps torchvision's C + 1 channels so that its mask loss / inference, which
index channels by label, run unchanged (channel 0 is never trained).
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN, resnet_fpn_backbone
from torchvision.models.detection.faster_rcnn import TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads, maskrcnn_inference, maskrcnn_loss
from torchvision.ops import boxes as box_ops

from eql.loss import prior_bias, torchvision_to_gt_classes
from shared.box_precision import fp32_box_arithmetic
from shared.device import fp32

__all__ = ["SigmoidBoxPredictor", "SoftmaxBoxPredictor", "EQLRoIHeads", "TinyTrunk", "build_detector"]
log = logging.getLogger("eql")


class SigmoidBoxPredictor(nn.Module):
    """Box predictor for sigmoid losses (EQL, sigmoid BCE, EQLv2): C class logits, no background
    logit, and class-specific box deltas [C * 4]. Initialisation as the official code: classifier
    weight N(0, 0.01), bias -log((1 - pi) / pi) with pi = 0.001; box weight N(0, 0.001), bias 0."""

    def __init__(self, in_channels: int, num_classes: int, prior_prob: float = 0.001):
        super().__init__()
        self.num_classes = num_classes
        self.cls_score = nn.Linear(in_channels, num_classes)
        self.bbox_pred = nn.Linear(in_channels, num_classes * 4)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.constant_(self.cls_score.bias, prior_bias(prior_prob))
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.constant_(self.bbox_pred.bias, 0)

    def forward(self, x):
        x = x.flatten(start_dim=1)
        return self.cls_score(x), self.bbox_pred(x)


class SoftmaxBoxPredictor(nn.Module):
    """Box predictor of the softmax baseline (Mask R-CNN's): C + 1 logits with the background LAST
    (detectron2's layout, so gt_classes = C means background in every loss), class-specific deltas."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.cls_score = nn.Linear(in_channels, num_classes + 1)
        self.bbox_pred = nn.Linear(in_channels, num_classes * 4)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.constant_(self.cls_score.bias, 0)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.constant_(self.bbox_pred.bias, 0)

    def forward(self, x):
        x = x.flatten(start_dim=1)
        return self.cls_score(x), self.bbox_pred(x)


class EQLRoIHeads(RoIHeads):
    """torchvision ``RoIHeads`` with a configurable classification loss and sigmoid scoring.

    Training: proposals are matched and sampled by torchvision (512 per image, 25 % foreground);
    ``cls_loss(logits, gt_classes[, keep_mask])`` with gt_classes in [0, C] (C = background);
    class-specific box regression, smooth-L1 with ``box_loss_beta`` (detectron2's default 0 = L1),
    summed and divided by the number of sampled proposals; torchvision's mask loss.
    Inference (``score_mode='sigmoid'``): sigmoid of the C logits, per-class boxes, score > threshold
    (LVIS: 1e-4), class-wise NMS, top ``detections_per_img`` (LVIS: 300). ``'softmax'`` drops the
    background column instead. ``use_image_labels``: the paper's Section 4.2 rule (weight 1 for
    categories verified present or absent in the proposal's image; targets carry ``image_labels``).
    """

    def __init__(self, *args, cls_loss: nn.Module, score_mode: str = "sigmoid", box_loss_beta: float = 0.0,
                 use_image_labels: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if score_mode not in ("sigmoid", "softmax"):
            raise ValueError(f"score_mode must be sigmoid or softmax, got {score_mode!r}")
        self.cls_loss = cls_loss
        self.score_mode = score_mode
        self.box_loss_beta = float(box_loss_beta)
        self.use_image_labels = bool(use_image_labels)

    @classmethod
    def from_roi_heads(cls, rh: RoIHeads, box_predictor: nn.Module, **kwargs) -> EQLRoIHeads:
        """Wrap the pieces of a torchvision ``RoIHeads`` (same pools, heads and sampling)."""
        return cls(rh.box_roi_pool, rh.box_head, box_predictor,
                   rh.proposal_matcher.high_threshold, rh.proposal_matcher.low_threshold,
                   rh.fg_bg_sampler.batch_size_per_image, rh.fg_bg_sampler.positive_fraction,
                   rh.box_coder.weights, rh.score_thresh, rh.nms_thresh, rh.detections_per_img,
                   mask_roi_pool=rh.mask_roi_pool, mask_head=rh.mask_head, mask_predictor=rh.mask_predictor,
                   **kwargs)

    @property
    def num_classes(self) -> int:
        return self.box_predictor.num_classes

    def box_losses(self, class_logits, box_regression, labels, regression_targets, targets):
        labels_cat = torch.cat(labels, dim=0)
        gt_classes = torchvision_to_gt_classes(labels_cat, self.num_classes)
        extra = {}
        if self.use_image_labels:
            if not all("image_labels" in t for t in targets):
                raise ValueError("use_image_labels needs targets[i]['image_labels'] (bool [C])")
            extra["keep_mask"] = torch.cat([t["image_labels"].bool()[None].expand(len(lab), -1)
                                            for t, lab in zip(targets, labels)], dim=0)
        loss_cls = self.cls_loss(class_logits.float(), gt_classes, **extra)
        fg = torch.where(labels_cat > 0)[0]
        deltas = box_regression.float().reshape(box_regression.shape[0], -1, 4)
        reg_targets = torch.cat(regression_targets, dim=0)
        loss_box = F.smooth_l1_loss(deltas[fg, labels_cat[fg] - 1], reg_targets[fg], beta=self.box_loss_beta,
                                    reduction="sum") / max(labels_cat.numel(), 1)
        return {"loss_classifier": loss_cls, "loss_box_reg": loss_box}

    def postprocess_detections(self, class_logits, box_regression, proposals, image_shapes):
        """Per image: (boxes [K, 4], scores [K], labels [K] in 1..C), K <= detections_per_img; in
        fp32 even inside autocast (decoding, scoring, NMS: ``shared.box_precision``'s rule)."""
        with fp32(class_logits.device):
            return self._postprocess(class_logits, box_regression, [p.float() for p in proposals], image_shapes)

    def _postprocess(self, class_logits, box_regression, proposals, image_shapes):
        c = self.num_classes
        class_logits = class_logits.float()
        pred_boxes = self.box_coder.decode(box_regression.float(), proposals)          # [N, C, 4]
        if self.score_mode == "sigmoid":
            scores = torch.sigmoid(class_logits)
        else:
            scores = F.softmax(class_logits, dim=-1)[:, :c]                          # background is last
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
            keep = box_ops.batched_nms(boxes, sc, labels, self.nms_thresh)[: self.detections_per_img]
            out_boxes.append(boxes[keep])
            out_scores.append(sc[keep])
            out_labels.append(labels[keep])
        return out_boxes, out_scores, out_labels

    def forward(self, features, proposals, image_shapes, targets=None):
        if self.keypoint_roi_pool is not None:
            raise NotImplementedError("EQLRoIHeads has no keypoint branch")
        if self.training:
            if targets is None:
                raise ValueError("targets are needed in training")
            proposals, matched_idxs, labels, regression_targets = self.select_training_samples(proposals, targets)
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(box_features)

        result, losses = [], {}
        if self.training:
            losses = self.box_losses(class_logits, box_regression, labels, regression_targets, targets)
        else:
            boxes, scores, labels_out = self.postprocess_detections(class_logits, box_regression, proposals,
                                                                    image_shapes)
            result = [{"boxes": b, "labels": lab, "scores": s} for b, s, lab in zip(boxes, scores, labels_out)]

        if self.has_mask():
            if self.training:
                pos = [torch.where(lab > 0)[0] for lab in labels]
                mask_proposals = [p[i] for p, i in zip(proposals, pos)]
                pos_matched = [m[i] for m, i in zip(matched_idxs, pos)]
            else:
                mask_proposals = [r["boxes"] for r in result]
            mask_logits = self.mask_predictor(self.mask_head(self.mask_roi_pool(features, mask_proposals, image_shapes)))
            if self.training:
                losses["loss_mask"] = maskrcnn_loss(mask_logits, mask_proposals, [t["masks"] for t in targets],
                                                    [t["labels"] for t in targets], pos_matched)
            else:
                for prob, r in zip(maskrcnn_inference(mask_logits, [r["labels"] for r in result]), result):
                    r["masks"] = prob
        return result, losses


class _Block(nn.Sequential):
    def __init__(self, cin, cout, stride):
        super().__init__(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class TinyTrunk(nn.Module):
    """A small conv trunk for the CPU toy runs (no pretrained weights): a stride-4 stem and four
    stages at strides 4, 8, 16, 32 (``layer1..layer4``), like a ResNet's, so torchvision's FPN
    wrapper takes it as it takes a ResNet."""

    def __init__(self, widths=(16, 32, 64, 128)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 2, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                  nn.ReLU(inplace=True), nn.Conv2d(widths[0], widths[0], 3, 2, 1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        self.layer1 = _Block(widths[0], widths[0], 1)
        self.layer2 = _Block(widths[0], widths[1], 2)
        self.layer3 = _Block(widths[1], widths[2], 2)
        self.layer4 = _Block(widths[2], widths[3], 2)
        self.widths = tuple(widths)

    def forward(self, x):
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))


def _resnet_backbone(name: str, pretrained: str, trainable_layers: int):
    import torchvision
    weights = None
    if pretrained == "imagenet":  # torchvision's ImageNet weights, downloaded on first use
        weights = {"resnet50": torchvision.models.ResNet50_Weights.IMAGENET1K_V1,
                   "resnet101": torchvision.models.ResNet101_Weights.IMAGENET1K_V1}[name]
    elif pretrained in ("", "none"):
        log.warning("%s without pretrained weights: the paper's runs start from ImageNet weights", name)
        trainable_layers = 5  # nothing to keep frozen
    backbone = resnet_fpn_backbone(backbone_name=name, weights=weights, trainable_layers=trainable_layers)
    if pretrained not in ("", "none", "imagenet"):  # a local torchvision-style ResNet state dict
        from shared.checkpoint import load_checkpoint
        sd = load_checkpoint(pretrained)
        sd = sd.get("model", sd) if isinstance(sd, dict) else sd
        missing, unexpected = backbone.body.load_state_dict(sd, strict=False)
        if missing:
            raise ValueError(f"{pretrained}: not a {name} state dict (missing {missing[:5]} ...)")
        log.info("backbone weights from %s (%d keys unused, e.g. the fc layer)", pretrained, len(unexpected))
    return backbone


def build_detector(num_classes: int, cls_loss: nn.Module, *, arch: str = "mask_rcnn", backbone: str = "resnet50",
                   score_mode: str = "sigmoid", pretrained_backbone: str = "imagenet", trainable_layers: int = 3,
                   min_size=(640, 672, 704, 736, 768, 800), max_size: int = 1333, score_thresh: float = 1e-4,
                   nms_thresh: float = 0.5, detections_per_img: int = 300, prior_prob: float = 0.001,
                   box_loss_beta: float = 0.0, use_image_labels: bool = False, rpn_pre_nms_top_n_train: int = 2000,
                   rpn_post_nms_top_n_train: int = 1000, rpn_pre_nms_top_n_test: int = 1000,
                   rpn_post_nms_top_n_test: int = 1000, roi_batch_size_per_image: int = 512,
                   anchor_sizes=(32, 64, 128, 256, 512), tiny_widths=(16, 32, 64, 128), fpn_channels: int = 256,
                   box_head_dim: int = 1024, mask_head_dim: int = 256) -> nn.Module:
    """Mask R-CNN (``arch='mask_rcnn'``) or Faster R-CNN (``'faster_rcnn'``) on a ResNet-50/101-FPN
    (``backbone='resnet50' | 'resnet101'``) or on ``TinyTrunk`` + FPN (``'tiny'``, the toy runs),
    with ``EQLRoIHeads``: ``score_mode='sigmoid'`` (C logits; EQL, sigmoid, EQLv2) or ``'softmax'``
    (C + 1 logits; the cross-entropy baseline). ``min_size`` (a tuple) is the training scale jitter
    (the shorter side is drawn per batch); evaluation uses its last value."""
    if arch not in ("mask_rcnn", "faster_rcnn"):
        raise ValueError(f"arch must be mask_rcnn or faster_rcnn, got {arch!r}")
    if backbone == "tiny":
        trunk = TinyTrunk(tiny_widths)
        body = BackboneWithFPN(trunk, {f"layer{i}": str(i - 1) for i in range(1, 5)}, list(trunk.widths),
                               fpn_channels)
    elif backbone in ("resnet50", "resnet101"):
        body = _resnet_backbone(backbone, pretrained_backbone, trainable_layers)
        fpn_channels = body.out_channels
    else:
        raise ValueError(f"backbone must be resnet50, resnet101 or tiny, got {backbone!r}")
    anchors = AnchorGenerator(tuple((int(s),) for s in anchor_sizes), ((0.5, 1.0, 2.0),) * len(anchor_sizes))
    resolution = 7
    box_head = TwoMLPHead(fpn_channels * resolution ** 2, box_head_dim)
    predictor = (SigmoidBoxPredictor(box_head_dim, num_classes, prior_prob) if score_mode == "sigmoid"
                 else SoftmaxBoxPredictor(box_head_dim, num_classes))
    common = dict(min_size=tuple(int(s) for s in min_size), max_size=int(max_size), rpn_anchor_generator=anchors,
                  rpn_pre_nms_top_n_train=rpn_pre_nms_top_n_train, rpn_post_nms_top_n_train=rpn_post_nms_top_n_train,
                  rpn_pre_nms_top_n_test=rpn_pre_nms_top_n_test, rpn_post_nms_top_n_test=rpn_post_nms_top_n_test,
                  box_head=box_head, box_predictor=predictor, box_score_thresh=score_thresh,
                  box_nms_thresh=nms_thresh, box_detections_per_img=detections_per_img,
                  box_batch_size_per_image=roi_batch_size_per_image)
    if arch == "mask_rcnn":
        layers = (mask_head_dim,) * 4 if backbone != "tiny" else (mask_head_dim,) * 2
        model = MaskRCNN(body, num_classes=None, mask_head=MaskRCNNHeads(fpn_channels, layers, 1),
                         mask_predictor=MaskRCNNPredictor(mask_head_dim, mask_head_dim, num_classes + 1), **common)
    else:
        model = FasterRCNN(body, num_classes=None, **common)
    model.roi_heads = EQLRoIHeads.from_roi_heads(model.roi_heads, predictor, cls_loss=cls_loss, score_mode=score_mode,
                                                 box_loss_beta=box_loss_beta, use_image_labels=use_image_labels)
    return fp32_box_arithmetic(model)   # networks autocast, box arithmetic in fp32 (shared.box_precision)


def detector_param_groups(model: nn.Module, weight_decay: float) -> list:
    """SGD parameter groups as detectron2 builds them: weight decay everywhere except on the
    parameters of normalisation layers (WEIGHT_DECAY_NORM = 0)."""
    norm_types = (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm, nn.SyncBatchNorm)
    norm_ids = {id(p) for m in model.modules() if isinstance(m, norm_types) for p in m.parameters(recurse=False)}
    decay = [p for p in model.parameters() if p.requires_grad and id(p) not in norm_ids]
    no_decay = [p for p in model.parameters() if p.requires_grad and id(p) in norm_ids]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]

