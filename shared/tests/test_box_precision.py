"""shared.box_precision on a plain torchvision Faster R-CNN: under bf16 autocast (CPU here, the same
dispatch as CUDA) the networks run in bf16 while anchors, decoding, proposal selection and NMS run
in fp32; proposals equal an fp32 computation of the same steps on the same head outputs, and stock
torchvision's are bf16 (the failure the rule prevents)."""
from collections import OrderedDict

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.rpn import concat_box_prediction_layers
from torchvision.ops import MultiScaleRoIAlign

from shared.box_precision import FP32BoxCoder, FP32RegionProposalNetwork, FP32RoIHeads, fp32_box_arithmetic


class Trunk(nn.Module):
    out_channels = 8

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=16, padding=1)

    def forward(self, x):
        return OrderedDict([("0", torch.relu(self.conv(x)))])


def _model():
    torch.manual_seed(0)
    anchors = AnchorGenerator(((64, 128, 256),), ((0.5, 1.0, 2.0),))
    model = FasterRCNN(Trunk(), num_classes=4, rpn_anchor_generator=anchors, min_size=800, max_size=1216,
                       box_roi_pool=MultiScaleRoIAlign(["0"], 7, 2), rpn_pre_nms_top_n_test=300,
                       rpn_post_nms_top_n_test=100, box_score_thresh=0.0)
    with torch.no_grad():  # spread the objectness so that selection has work to do
        model.rpn.head.cls_logits.weight.normal_(0, 0.3)
        model.rpn.head.bbox_pred.weight.normal_(0, 0.05)
    return model.eval()


def _capture(model, images):
    seen = {}
    hooks = [model.rpn.register_forward_pre_hook(lambda m, a: seen.__setitem__("rpn_in", a)),
             model.rpn.head.register_forward_hook(lambda m, a, o: seen.__setitem__("head", o)),
             model.rpn.register_forward_hook(lambda m, a, o: seen.__setitem__("proposals", o[0][0])),
             model.roi_heads.register_forward_hook(lambda m, a, o: seen.__setitem__("dets", o[0][0]))]
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        model(images)
    for h in hooks:
        h.remove()
    return seen


def _fp32_steps(rpn, seen):
    images, features = seen["rpn_in"][0], list(seen["rpn_in"][1].values())
    objectness, deltas = seen["head"]
    obj, dl = concat_box_prediction_layers([o.float() for o in objectness], [d.float() for d in deltas])
    anchors = rpn.anchor_generator(images, [f.float() for f in features])
    props = rpn.box_coder.decode(dl, anchors).view(len(anchors), -1, 4)
    return rpn.filter_proposals(props, obj, images.image_sizes, [o[0].numel() for o in objectness])[0][0]


def test_the_rule_keeps_boxes_fp32_and_equal_to_fp32_steps():
    images = [torch.rand(3, 800, 1216, generator=torch.Generator().manual_seed(1))]
    stock = _model()
    seen = _capture(stock, images)
    assert seen["head"][0][0].dtype == torch.bfloat16 and seen["proposals"].dtype == torch.bfloat16

    model = fp32_box_arithmetic(_model())
    assert isinstance(model.rpn, FP32RegionProposalNetwork) and isinstance(model.roi_heads, FP32RoIHeads)
    assert isinstance(model.rpn.box_coder, FP32BoxCoder) and isinstance(model.roi_heads.box_coder, FP32BoxCoder)
    seen = _capture(model, images)
    assert seen["head"][0][0].dtype == torch.bfloat16          # the network still autocasts
    props, dets = seen["proposals"], seen["dets"]
    assert props.dtype == torch.float32 and len(props) == 100 and props.max() > 600
    torch.testing.assert_close(props, _fp32_steps(model.rpn, seen), atol=1e-3, rtol=0)
    assert dets["boxes"].dtype == torch.float32 and dets["scores"].dtype == torch.float32 and len(dets["boxes"]) > 0


def test_training_losses_are_fp32_under_bf16():
    model = fp32_box_arithmetic(_model()).train()
    target = {"boxes": torch.tensor([[100.0, 120.0, 400.0, 500.0]]), "labels": torch.tensor([2])}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model([torch.rand(3, 800, 1216)], [target])
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values()), losses
