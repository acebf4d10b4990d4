"""The COCO detector: torchvision's Faster R-CNN with an FPN on a TopoNet's stage outputs.

`build_detector(backbone, num_classes)`: torchvision's `BackboneWithFPN` takes the last stage at
each stride (the four deepest strides, as ResNet's layer1..4), the stem and the first stages are
frozen (`trainable_stages`, torchvision's `trainable_layers` = 3), and every BatchNorm becomes a
`FrozenBatchNorm2d` (torchvision's recipe; `freeze_bn=False` keeps trainable BN for a backbone
trained from scratch, as on the toy data). RPN, RoI heads and box coder are torchvision's, with the
repository's precision rule (`shared.box_precision.fp32_box_arithmetic`): anchors, box decoding,
proposal selection (top-k, NMS) and the final per-class NMS run in fp32 even inside bf16 autocast.
"""
from __future__ import annotations

from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops.misc import FrozenBatchNorm2d

from shared.box_precision import fp32_box_arithmetic
from topo_connectivity.model import TopoNet

__all__ = ["freeze_batchnorm", "fpn_layers", "build_detector"]


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d by a FrozenBatchNorm2d holding its statistics and affine terms."""
    for name, child in list(module.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            frozen.weight.copy_(child.weight.detach())
            frozen.bias.copy_(child.bias.detach())
            frozen.running_mean.copy_(child.running_mean)
            frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child)
    return module


def fpn_layers(backbone: TopoNet, levels: int = 4) -> list[str]:
    """The last stage at each output stride, the `levels` deepest ones."""
    last = {}
    for name, info in zip(backbone.stage_names, backbone.stage_info):
        last[info["stride"]] = name
    return [last[s] for s in sorted(last)][-levels:]


def build_detector(backbone: TopoNet, num_classes: int, *, trainable_stages: int = 3, freeze_bn: bool = True,
                   fpn_channels: int = 256, min_size=800, max_size: int = 1333, anchor_sizes=(32, 64, 128, 256, 512),
                   rpn_pre_nms_top_n_train: int = 2000, rpn_post_nms_top_n_train: int = 2000,
                   rpn_pre_nms_top_n_test: int = 1000, rpn_post_nms_top_n_test: int = 1000,
                   box_batch_size_per_image: int = 512, box_detections_per_img: int = 100,
                   box_score_thresh: float = 0.05, box_head_dim: int = 1024) -> FasterRCNN:
    """Faster R-CNN + FPN on `backbone`'s stage outputs; `num_classes` without the background.
    `anchor_sizes`: one size per FPN level (the returned stages plus the pooled level)."""
    layers = fpn_layers(backbone)
    if len(anchor_sizes) != len(layers) + 1:
        raise ValueError(f"{len(anchor_sizes)} anchor sizes for {len(layers) + 1} FPN levels ({layers} + pool)")
    if freeze_bn:
        freeze_batchnorm(backbone)
    names = ["stem"] + backbone.stage_names
    trainable = set(backbone.stage_names[::-1][:trainable_stages]) if trainable_stages > 0 else set()
    for name in names:
        for p in getattr(backbone, name).parameters():
            p.requires_grad_(name in trainable)
    channels = {n: i["channels"] for n, i in zip(backbone.stage_names, backbone.stage_info)}
    body = BackboneWithFPN(backbone, {n: str(k) for k, n in enumerate(layers)}, [channels[n] for n in layers],
                           fpn_channels)
    anchors = AnchorGenerator(tuple((int(s),) for s in anchor_sizes), ((0.5, 1.0, 2.0),) * len(anchor_sizes))
    box_head = TwoMLPHead(fpn_channels * 7 * 7, box_head_dim)  # torchvision's, width configurable
    sizes = (int(min_size),) if isinstance(min_size, (int, float)) else tuple(int(s) for s in min_size)
    model = FasterRCNN(body, num_classes=None, min_size=sizes, max_size=int(max_size),
                       rpn_anchor_generator=anchors, rpn_pre_nms_top_n_train=rpn_pre_nms_top_n_train,
                       rpn_post_nms_top_n_train=rpn_post_nms_top_n_train, rpn_pre_nms_top_n_test=rpn_pre_nms_top_n_test,
                       rpn_post_nms_top_n_test=rpn_post_nms_top_n_test, box_batch_size_per_image=box_batch_size_per_image,
                       box_detections_per_img=box_detections_per_img, box_score_thresh=box_score_thresh,
                       box_head=box_head, box_predictor=FastRCNNPredictor(box_head_dim, num_classes + 1))
    return fp32_box_arithmetic(model)  # fp32 anchors, decoding, proposal selection, NMS (shared.box_precision)
