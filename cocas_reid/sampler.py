"""PK sampling: every global batch holds P identities x K images each (Hermans et al., "In
defense of the triplet loss"), as batch-hard triplet mining needs.

One epoch walks `rounds` permutations of the training identities, drawn from a generator seeded by
(seed, epoch) alone, in groups of P: `len = rounds * (num_ids // P)` global batches (the identities
left over by the division wait for the next epoch's permutation). Each identity of a batch gives K
of its images, drawn without replacement when it has at least K, with replacement below K.

Under DDP every rank computes the same global batches (no communication) and takes a disjoint
slice of P / world_size identities of each, so the P x K images of a global batch are spread over
the ranks with no identity split between two of them; `--batch-size` is the global batch P x K
(the repository's batch rule). The order depends only on (seed, epoch): a run resumed at an epoch
boundary replays exactly what an uninterrupted run would draw.
"""
from __future__ import annotations

import numpy as np
from torch.utils.data import Sampler

from shared import dist

__all__ = ["PKBatchSampler"]


class PKBatchSampler(Sampler):
    """Yields this rank's index lists (P / world_size identities x K images) of each global batch."""

    def __init__(self, labels, p: int, k: int, seed: int = 0, rounds: int = 1, rank: int | None = None,
                 world_size: int | None = None):
        labels = np.asarray(labels)
        self.rank = dist.rank() if rank is None else int(rank)
        self.world_size = dist.world_size() if world_size is None else int(world_size)
        if p < 1 or k < 1 or rounds < 1:
            raise ValueError(f"P={p}, K={k}, rounds={rounds}: all must be positive")
        if p % self.world_size:
            raise ValueError(f"P={p} identities per global batch (batch size {p * k} / K={k}) must be divisible by "
                             f"the {self.world_size} processes: each rank takes whole identities")
        ids, inverse = np.unique(labels, return_inverse=True)
        if ids.size < p:
            raise ValueError(f"{ids.size} training identities < P={p} identities per batch")
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse, minlength=ids.size))[:-1]
        self.index_of_id = np.split(order, bounds)  # the image indices of each identity
        self.p, self.k, self.seed, self.rounds = int(p), int(k), int(seed), int(rounds)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.rounds * (len(self.index_of_id) // self.p)

    def global_batches(self, epoch: int | None = None) -> list[np.ndarray]:
        """Every global batch of an epoch (P x K image indices, identity by identity)."""
        rng = np.random.default_rng([self.seed, self.epoch if epoch is None else int(epoch)])
        n = len(self.index_of_id)
        batches = []
        for _ in range(self.rounds):
            perm = rng.permutation(n)
            for b in range(n // self.p):
                batch = [rng.choice(self.index_of_id[i], self.k, replace=self.index_of_id[i].size < self.k)
                         for i in perm[b * self.p:(b + 1) * self.p]]
                batches.append(np.concatenate(batch))
        return batches

    def __iter__(self):
        share = self.p // self.world_size * self.k  # images of this rank: whole identities
        for batch in self.global_batches():
            yield batch[self.rank * share:(self.rank + 1) * share].tolist()
