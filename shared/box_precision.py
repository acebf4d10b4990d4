"""Box arithmetic in fp32 inside bf16 autocast, for torchvision's two-stage detectors.

Under autocast the backbone and head convolutions run in bf16, and so do their outputs. Stock
torchvision then builds the anchors in the features' dtype and decodes the deltas in theirs, so the
proposals are computed in bf16: 8 significant bits, coordinates above 512 px snap to multiples of
4 px (8 px above 1024), and the top-k and NMS of proposal selection rank bf16 scores. The answer
then depends on the GPU's precision, not on the weights.

The rule (the repository's, README "Multi-GPU"): the networks (backbone, FPN, RPN head, box and
mask heads) autocast; everything that turns their outputs into boxes runs in fp32, inputs cast up:

* anchor generation (``FP32AnchorGenerator``: fp32 whatever the features' dtype);
* delta decoding and regression-target encoding (``FP32BoxCoder``), in the RPN and the RoI heads;
* proposal selection: per-level top-k, sigmoid, clipping, small-box removal, NMS, and the RPN
  losses (``FP32RegionProposalNetwork``);
* RoI box decoding, scoring and the final class-wise NMS (``FP32RoIHeads`` for torchvision's own
  ``RoIHeads``; a subclass with its own ``postprocess_detections`` runs it under
  ``shared.device.fp32`` itself, as ``eql.model.EQLRoIHeads`` and
  ``openimages_det.model.LabelSetRoIHeads`` do).

    model = fp32_box_arithmetic(torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None))

Used by every package with a torchvision detector (eql, openimages_det, topo_connectivity's COCO
detector): the rule is the repository's, not a paper's, so it lives here once. It only wraps
torchvision's own classes; the detectors themselves stay in their packages.
"""
from __future__ import annotations

import torch
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork

from shared.device import fp32

__all__ = ["FP32AnchorGenerator", "FP32BoxCoder", "FP32RegionProposalNetwork", "FP32RoIHeads",
           "fp32_box_arithmetic"]


class FP32AnchorGenerator(AnchorGenerator):
    """Anchors in fp32 whatever the dtype of the feature maps (stock: the features' dtype)."""

    def set_cell_anchors(self, dtype: torch.dtype, device: torch.device) -> None:
        super().set_cell_anchors(torch.float32, device)


class FP32BoxCoder(BoxCoder):
    """Decodes deltas and encodes regression targets in fp32, outside autocast (stock: in the
    dtype of the deltas, bf16 under autocast)."""

    def decode_single(self, rel_codes: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        with fp32(rel_codes.device):
            return super().decode_single(rel_codes.float(), boxes.float())

    def encode_single(self, reference_boxes: torch.Tensor, proposals: torch.Tensor) -> torch.Tensor:
        with fp32(reference_boxes.device):
            return super().encode_single(reference_boxes.float(), proposals.float())


class FP32RegionProposalNetwork(RegionProposalNetwork):
    """torchvision's RPN with proposal selection and losses in fp32 (its head keeps autocast);
    build it from an existing RPN with ``from_rpn``, which also swaps in the fp32 anchor
    generator and box coder."""

    @classmethod
    def from_rpn(cls, rpn: RegionProposalNetwork) -> FP32RegionProposalNetwork:
        anchors = FP32AnchorGenerator(rpn.anchor_generator.sizes, rpn.anchor_generator.aspect_ratios)
        new = cls(anchors, rpn.head, rpn.proposal_matcher.high_threshold, rpn.proposal_matcher.low_threshold,
                  rpn.fg_bg_sampler.batch_size_per_image, rpn.fg_bg_sampler.positive_fraction,
                  dict(rpn._pre_nms_top_n), dict(rpn._post_nms_top_n), rpn.nms_thresh, rpn.score_thresh)
        new.box_coder = FP32BoxCoder(rpn.box_coder.weights, rpn.box_coder.bbox_xform_clip)
        new.min_size = rpn.min_size
        new.train(rpn.training)
        return new

    def filter_proposals(self, proposals, objectness, image_shapes, num_anchors_per_level):
        with fp32(proposals.device):
            return super().filter_proposals(proposals.float(), objectness.float(), image_shapes, num_anchors_per_level)

    def compute_loss(self, objectness, pred_bbox_deltas, labels, regression_targets):
        with fp32(objectness.device):
            return super().compute_loss(objectness.float(), pred_bbox_deltas.float(), labels,
                                        [t.float() for t in regression_targets])


class FP32RoIHeads(RoIHeads):
    """torchvision's RoIHeads with box decoding, scoring and NMS of the detections in fp32."""

    def postprocess_detections(self, class_logits, box_regression, proposals, image_shapes):
        with fp32(class_logits.device):
            return super().postprocess_detections(class_logits.float(), box_regression.float(),
                                                  [p.float() for p in proposals], image_shapes)


def fp32_box_arithmetic(model: torch.nn.Module) -> torch.nn.Module:
    """Apply the rule to a torchvision ``GeneralizedRCNN`` (Faster / Mask / Keypoint R-CNN), in
    place: fp32 RPN (anchors, decoding, selection, losses) and RoI box coder; torchvision's own
    ``RoIHeads`` also decodes and suppresses in fp32 (a subclass that overrides
    ``postprocess_detections`` must do so itself). Returns the model."""
    model.rpn = FP32RegionProposalNetwork.from_rpn(model.rpn)
    rh = model.roi_heads
    rh.box_coder = FP32BoxCoder(rh.box_coder.weights, rh.box_coder.bbox_xform_clip)
    if type(rh) is RoIHeads:
        rh.__class__ = FP32RoIHeads        # no new state: only postprocess_detections changes
    return model
