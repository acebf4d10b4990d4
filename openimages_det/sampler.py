"""Image sampling for imbalanced labels (the paper's soft-balance sampling, Eq. S) and the hybrid scheduler.

* natural: every image once per epoch, shuffled (instances in their natural frequency);
* soft-balance: draw a class c with p(c) ∝ N_c^λ (N_c = training images holding c), then an image
  holding c uniformly. λ = 0 is class-aware sampling (uniform over classes, Shen et al. 2016); λ = 1
  weights classes by their images, close to natural sampling (an image is then drawn in proportion to
  its number of classes); ``--sampling class_aware`` is λ = 0. The parametrisation is this project's
  reading of the paper (see README);
* hybrid scheduler (``--hybrid``) so that every image is still seen: ``switch`` samples soft-balanced
  before epoch ``--switch-at`` and naturally from it on; ``mix`` fills a share ``--natural-share`` of
  every batch from the natural stream (a permutation of all images that runs on across epochs) and the
  rest soft-balanced.

An epoch is ``len(images) // global_batch`` batches whatever the sampling. The stream of an epoch is a
function of (seed, epoch) only: the same global batches for any number of processes; rank k takes
the k-th slice of each global batch (ranks never share an image in a step), and ``set_epoch(epoch,
start_batch)`` resumes in the middle of an epoch exactly. Each sample carries its horizontal flip,
drawn from the same stream, so the augmentation does not depend on data-loader workers.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.sparse import csc_matrix

__all__ = ["class_probabilities", "TrainingBatchSampler", "SAMPLINGS", "HYBRIDS"]
SAMPLINGS = ("natural", "class_aware", "soft")
HYBRIDS = ("none", "switch", "mix")


def class_probabilities(image_counts: np.ndarray, lam: float) -> np.ndarray:
    """p(c) ∝ N_c^λ over classes with at least one image (classes without images get 0)."""
    n = np.asarray(image_counts, np.float64)
    p = np.where(n > 0, np.power(np.maximum(n, 1.0), lam), 0.0)
    if p.sum() <= 0:
        raise ValueError("no class has a training image")
    return p / p.sum()


class TrainingBatchSampler(torch.utils.data.Sampler):
    """Yields this rank's part of each global batch as a list of ``(image index, flip)``.

    class_images: image x class incidence (scipy sparse, [n_images, C + 1]; column 0 ignored).
    """

    def __init__(self, class_images, global_batch: int, *, sampling: str = "natural", soft_lambda: float = 0.5,
                 hybrid: str = "none", switch_at: int = 0, natural_share: float = 0.5, hflip_prob: float = 0.5,
                 seed: int = 0, rank: int = 0, world_size: int = 1):
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling {sampling!r}: use one of {SAMPLINGS}")
        if hybrid not in HYBRIDS:
            raise ValueError(f"hybrid {hybrid!r}: use one of {HYBRIDS}")
        if hybrid != "none" and sampling == "natural":
            raise ValueError("--hybrid mixes natural with a balanced sampling: set --sampling soft or class_aware")
        if global_batch % world_size:
            raise ValueError(f"global batch {global_batch} is not divisible by {world_size} processes")
        if not 0.0 <= natural_share <= 1.0:
            raise ValueError("--natural-share must lie in [0, 1]")
        m = csc_matrix(class_images)
        self.n_images = m.shape[0]
        if self.n_images < global_batch:
            raise ValueError(f"{self.n_images} training images cannot fill a global batch of {global_batch}")
        # images of class k + 1 (k = 0 .. C - 1): class_imgs[class_start[k]:class_start[k] + class_count[k]]
        self.class_imgs = m.indices.astype(np.int64)
        self.class_start = m.indptr[1:-1].astype(np.int64)
        self.class_count = np.diff(m.indptr)[1:].astype(np.int64)
        counts = self.class_count
        lam = 0.0 if sampling == "class_aware" else soft_lambda
        self.p_class = None if sampling == "natural" else class_probabilities(counts, lam)
        self.global_batch, self.sampling, self.hybrid = global_batch, sampling, hybrid
        self.switch_at, self.natural_share, self.hflip_prob = int(switch_at), float(natural_share), float(hflip_prob)
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.per_rank = global_batch // world_size
        self.batches_per_epoch = self.n_images // global_batch
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch

    def _rng(self, *key) -> np.random.Generator:
        return np.random.default_rng([self.seed, *key])

    def _balanced(self, rng: np.random.Generator, n: int) -> np.ndarray:
        cls = rng.choice(len(self.p_class), size=n, p=self.p_class)
        off = (rng.random(n) * self.class_count[cls]).astype(np.int64)
        return self.class_imgs[self.class_start[cls] + off]

    def _natural(self, start: int, n: int) -> np.ndarray:
        """Positions start .. start + n of the endless natural stream (one permutation per pass)."""
        pos = np.arange(start, start + n, dtype=np.int64)
        out = np.empty(n, np.int64)
        for p in np.unique(pos // self.n_images):
            sel = pos // self.n_images == p
            perm = self._rng(1, int(p)).permutation(self.n_images)
            out[sel] = perm[pos[sel] % self.n_images]
        return out

    def epoch_stream(self, epoch: int) -> np.ndarray:
        """The global sample stream of an epoch: [batches_per_epoch * global_batch] image indices."""
        n = self.batches_per_epoch * self.global_batch
        rng = self._rng(0, epoch)
        if self.sampling == "natural" or (self.hybrid == "switch" and epoch >= self.switch_at):
            return rng.permutation(self.n_images)[:n]
        if self.hybrid == "mix":
            k = int(round(self.natural_share * self.global_batch))
            nat = self._natural(epoch * self.batches_per_epoch * k, self.batches_per_epoch * k)
            bal = self._balanced(rng, self.batches_per_epoch * (self.global_batch - k))
            batches = np.concatenate([nat.reshape(-1, k), bal.reshape(-1, self.global_batch - k)], axis=1)
            return batches.reshape(-1)
        return self._balanced(rng, n)

    def __iter__(self):
        stream = self.epoch_stream(self.epoch).reshape(self.batches_per_epoch, self.global_batch)
        flips = self._rng(2, self.epoch).random(stream.shape) < self.hflip_prob
        lo, hi = self.rank * self.per_rank, (self.rank + 1) * self.per_rank
        for b in range(self.start_batch, self.batches_per_epoch):
            yield [(int(i), bool(f)) for i, f in zip(stream[b, lo:hi], flips[b, lo:hi])]
