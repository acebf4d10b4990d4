"""BSN++ (Su et al., AAAI 2021): complementary boundary generator, bi-directional boundary
matching, boundary-matching layer and proposal relation block, with BMN's losses, our
scale-balanced re-sampling, vectorised post-processing and the official ActivityNet evaluation.

Public API, for use in other code:
    BSNPP               the network (BMN as the ablation cbg="tem", bidirectional=False, prb="none")
    BMLayer             the fused, exact boundary-matching layer (+ its Conv3d); DenseBMLayer reference
    BSNPPLoss           the full objective; boundary_bce, iou_balanced_reg_loss, map_cls_loss
    soft_nms, generate_candidates, postprocess_video   BMN's post-processing, vectorised
"""
from bsnpp.bm_layer import BMLayer, DenseBMLayer
from bsnpp.loss import BSNPPLoss, boundary_bce, iou_balanced_reg_loss, map_cls_loss
from bsnpp.model import BSNPP
from bsnpp.postprocess import generate_candidates, postprocess_video, soft_nms

__all__ = ["BSNPP", "BMLayer", "DenseBMLayer", "BSNPPLoss", "boundary_bce", "iou_balanced_reg_loss",
           "map_cls_loss", "soft_nms", "generate_candidates", "postprocess_video"]
