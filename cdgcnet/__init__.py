"""CDGCNet: Class-wise Dynamic Graph Convolution for Semantic Segmentation (Hu et al., ECCV 2020).

The public API: the network, its CDGC module and graph layer, the losses, and inference.
"""
from cdgcnet.engine import predict, slide_logits
from cdgcnet.graph import GraphLayer, dense_graph_layer
from cdgcnet.loss import OhemCrossEntropy, SegCriterion
from cdgcnet.model import CDGCModule, CDGCNet

__all__ = ["CDGCNet", "CDGCModule", "GraphLayer", "dense_graph_layer", "OhemCrossEntropy", "SegCriterion",
           "predict", "slide_logits"]
