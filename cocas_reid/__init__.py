"""BC-Net (Yu et al., COCAS, CVPR 2020): clothes-changing person re-identification with clothes
templates. Public API: the model, its losses, the PK sampler, the readers and the ranking."""
from cocas_reid.data import DataError, Split, load_dataset
from cocas_reid.loss import BCNetLoss, batch_hard_triplet
from cocas_reid.model import BCNet, MaskModule
from cocas_reid.rerank import re_ranking
from cocas_reid.sampler import PKBatchSampler
from cocas_reid.xqda import xqda_distance, xqda_fit

__all__ = ["BCNet", "MaskModule", "BCNetLoss", "batch_hard_triplet", "PKBatchSampler", "load_dataset", "Split",
           "DataError", "re_ranking", "xqda_fit", "xqda_distance"]
