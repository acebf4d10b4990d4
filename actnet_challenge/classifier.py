"""The video-level classifier of the two-stage pipeline ("an optimal video classifier to recognize
the generated proposals", report Sec. 3): snippet features -> temporal encoder -> pooling (mean+max
or attention) -> MLP -> one logit per class, trained multi-label with BCE so that videos with
several activities are handled.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset

from shared.formats.activitynet import FeatureStore

__all__ = ["VideoClassifier", "VideoFeatureDataset", "resample", "topk_accuracy"]


def resample(feats: np.ndarray, size: int) -> np.ndarray:
    """[L, C] snippet features -> [C, size] by linear interpolation (any L >= 1)."""
    x = torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float32)).T.unsqueeze(0)  # [1, C, L]
    return F.interpolate(x, size=size, mode="linear", align_corners=False)[0].numpy()


class VideoFeatureDataset(Dataset):
    """(features [C, size], multi-hot labels [K]) per video from a feature store."""

    def __init__(self, video_ids: list[str], labels: dict[str, list[str]], classes: list[str],
                 store: FeatureStore, size: int = 32):
        self.video_ids, self.labels, self.store, self.size = list(video_ids), labels, store, size
        self.index = {c: i for i, c in enumerate(classes)}
        self.num_classes = len(classes)
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self):
        return len(self.video_ids)

    def __getitem__(self, i):
        if i not in self._cache:
            self._cache[i] = resample(self.store.load(self.video_ids[i]), self.size)
        y = torch.zeros(self.num_classes)
        for lab in self.labels.get(self.video_ids[i], []):
            y[self.index[lab]] = 1.0
        return {"features": torch.from_numpy(self._cache[i]), "labels": y, "index": i}


class VideoClassifier(nn.Module):
    """Temporal Conv1d encoder, then mean+max pooling (concatenated) or attention pooling
    (a learned softmax over time), then a two-layer MLP to per-class logits."""

    def __init__(self, in_channels: int, num_classes: int, hidden: int = 512, pooling: str = "meanmax",
                 dropout: float = 0.5):
        super().__init__()
        if pooling not in ("meanmax", "attention"):
            raise ValueError(f"pooling must be meanmax|attention, got {pooling!r}")
        self.pooling = pooling
        self.encoder = nn.Sequential(nn.Conv1d(in_channels, hidden, 3, padding=1), nn.ReLU(inplace=True))
        if pooling == "attention":
            self.attn = nn.Conv1d(hidden, 1, 1)
        width = 2 * hidden if pooling == "meanmax" else hidden
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, hidden), nn.ReLU(inplace=True),
                                  nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward(self, x):  # x [B, C, T]
        h = self.encoder(x)
        if self.pooling == "meanmax":
            z = torch.cat([h.mean(-1), h.amax(-1)], 1)
        else:
            w = self.attn(h).softmax(-1)  # [B, 1, T]
            z = (h * w).sum(-1)
        return self.head(z)


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Percent of videos whose top-k classes contain at least one of their ground-truth classes
    (ActivityNet's video-level top-k, multi-label aware)."""
    if len(scores) == 0:
        return float("nan")
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    hit = np.take_along_axis(labels, top, axis=1).max(1) > 0
    return float(100.0 * hit.mean())
