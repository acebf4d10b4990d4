"""Equalization Loss (Tan et al., CVPR 2020) for long-tailed detection on LVIS, on torchvision's
Faster / Mask R-CNN, with a vectorised LVIS evaluator.

Public API, for use in other code:
    equalization_loss, EqualizationLoss     sigmoid EQL (the detection loss), functional and module
    softmax_equalization_loss, SoftmaxEQL   softmax EQL for image classification
    sigmoid_bce_loss, softmax_ce_loss       the baselines;  EQLv2 (an extra, CVPR 2021)
    SigmoidBoxPredictor, EQLRoIHeads        the C-logit box predictor and torchvision RoIHeads subclass
    build_detector                          Mask / Faster R-CNN (R-50 / R-101 FPN, or the toy trunk)
    lvis_evaluate                           LVIS box / mask AP (lvis-api semantics), vectorised
"""
from eql.loss import (
    EQLv2,
    EqualizationLoss,
    SigmoidBCELoss,
    SoftmaxCELoss,
    SoftmaxEQL,
    equalization_loss,
    sigmoid_bce_loss,
    softmax_ce_loss,
    softmax_equalization_loss,
)

__all__ = ["equalization_loss", "EqualizationLoss", "softmax_equalization_loss", "SoftmaxEQL",
           "sigmoid_bce_loss", "SigmoidBCELoss", "softmax_ce_loss", "SoftmaxCELoss", "EQLv2",
           "SigmoidBoxPredictor", "SoftmaxBoxPredictor", "EQLRoIHeads", "build_detector", "lvis_evaluate"]


def __getattr__(name):  # the detector and evaluator import torchvision / pycocotools lazily
    if name in ("SigmoidBoxPredictor", "SoftmaxBoxPredictor", "EQLRoIHeads", "build_detector"):
        from eql import model
        return getattr(model, name)
    if name == "lvis_evaluate":
        from eql.lvis_eval import evaluate
        return evaluate
    raise AttributeError(f"module 'eql' has no attribute {name!r}")
