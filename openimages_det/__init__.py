"""Large-scale Object Detection in the Wild from Imbalanced Multi-Labels (Peng et al., CVPR 2020) on
torchvision's Faster R-CNN, scored with the exact Open Images Challenge 2019 metric.

Public API, for use in other code:
    concurrent_softmax_loss, softmax_loss, sigmoid_loss, class_scores   the losses over label sets (loss.py)
    TrainingBatchSampler, class_probabilities   soft-balance sampling and the hybrid scheduler (sampler.py)
    LabelSetRoIHeads, build_detector            the RoI heads subclass and the detector (model.py)
    evaluate, expand_hierarchy                  the Open Images Challenge 2019 metric (oid_eval.py)
    load_hierarchy                              the label hierarchy (hierarchy.py)
"""
from openimages_det.hierarchy import load_hierarchy
from openimages_det.loss import class_scores, concurrent_softmax_loss, sigmoid_loss, softmax_loss
from openimages_det.oid_eval import evaluate, expand_hierarchy
from openimages_det.sampler import TrainingBatchSampler, class_probabilities

__all__ = ["concurrent_softmax_loss", "softmax_loss", "sigmoid_loss", "class_scores", "TrainingBatchSampler",
           "class_probabilities", "LabelSetRoIHeads", "build_detector", "evaluate", "expand_hierarchy",
           "load_hierarchy"]


def __getattr__(name):  # the detector imports torchvision lazily
    if name in ("LabelSetRoIHeads", "build_detector"):
        from openimages_det import model
        return getattr(model, name)
    raise AttributeError(f"module 'openimages_det' has no attribute {name!r}")
