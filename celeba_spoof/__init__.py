"""CelebA-Spoof (Zhang et al., ECCV 2020): dataset tools and AENet, with the training code the
official release never had.

Public API, for use in other code:
    AENet, load_official          the model (released module names) and the released checkpoint
    AENetLoss, VARIANTS           the multi-task objective and the paper's ablation variants
    SpoofDataset, load_split      the official on-disk layout -> tensors
    read_box_file, crop_box       the _BB.txt boxes, scaled and clamped as the official code does
    parse_label, load_label_file  the 44-integer label vectors
"""
from celeba_spoof.bbox import crop_box, official_box, read_box_file
from celeba_spoof.data import SpoofDataset, load_split
from celeba_spoof.labels import load_label_file, parse_label
from celeba_spoof.loss import VARIANTS, AENetLoss, variant_terms
from celeba_spoof.model import AENet, load_official

__all__ = ["AENet", "load_official", "AENetLoss", "VARIANTS", "variant_terms", "SpoofDataset",
           "load_split", "read_box_file", "crop_box", "official_box", "parse_label", "load_label_file"]
