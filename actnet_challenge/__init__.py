"""ActivityNet Challenge 2020 temporal action localization (Su et al., arXiv 2007.09883), the
two-stage pipeline: proposal ensembles -> a video-level classifier -> detections from fused
proposal and class scores, evaluated with the official detection protocol.

Public API:
    ensemble_proposals     fuse proposal files (union + Soft-NMS, or score voting)
    gaussian_soft_nms      vectorised Gaussian Soft-NMS over temporal segments
    VideoClassifier        temporal pooling + MLP over snippet features (multi-label)
    assemble_detections    proposals x top-k video classes -> official detection JSON
"""
from actnet_challenge.classifier import VideoClassifier
from actnet_challenge.detect import assemble_detections, top1_label_baseline
from actnet_challenge.ensemble import ensemble_proposals, gaussian_soft_nms

__all__ = ["ensemble_proposals", "gaussian_soft_nms", "VideoClassifier", "assemble_detections",
           "top1_label_baseline"]
