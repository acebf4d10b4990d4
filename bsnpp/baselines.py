"""The trivial proposal generators a learned one must beat, scored beside every run.

* random: ``n`` uniformly random proposals per video (start and end uniform in the video,
  random scores); on ActivityNet-1.3 validation it scores AUC 44.88 (BSN's table).
* prior: no features at all. The mean over the training items of the start, end and IoU-map
  targets (the prior over where actions start and end, and over which (start, duration) cells
  overlap an action) is given to every evaluated item as if the network had predicted it
  (``cls = reg =`` the mean IoU map), then post-processed exactly as the network's output. What
  it recovers is the dataset's duration and position statistics; what a model adds beyond it is
  what it reads from the features.
"""
from __future__ import annotations

import numpy as np

__all__ = ["random_proposals", "prior_maps"]


def random_proposals(ground_truth: dict, n: int = 100, seed: int = 0) -> dict[str, np.ndarray]:
    """``{video_id: [n, 3]}`` (start s, end s, score): ``n`` uniform random proposals per video of
    an ActivityNet ground-truth dict (its ``duration`` bounds them)."""
    rng = np.random.default_rng(seed)
    out = {}
    for vid, v in ground_truth["database"].items():
        a, b = rng.uniform(0, v["duration"], (2, n))
        out[vid] = np.column_stack([np.minimum(a, b), np.maximum(a, b), rng.uniform(size=n)])
    return out


def prior_maps(dataset) -> dict[str, np.ndarray]:
    """The mean targets of a labelled ``bsnpp.data.ProposalDataset`` (features are not read):
    ``start``, ``end`` [T] and ``cls``, ``reg`` [D, T] (both the mean IoU map), float32."""
    if len(dataset) == 0:
        raise ValueError("prior_maps: the training dataset is empty")
    acc = {"start": 0.0, "end": 0.0, "iou_map": 0.0}
    for i in range(len(dataset)):
        t = dataset.targets(i)
        for k in acc:
            acc[k] = acc[k] + t[k].astype(np.float64)
    mean = {k: (v / len(dataset)).astype(np.float32) for k, v in acc.items()}
    return {"start": mean["start"], "end": mean["end"], "cls": mean["iou_map"], "reg": mean["iou_map"].copy()}
