"""Soft-balance sampling and the hybrid scheduler: limits, rank-disjoint batches, exact resume."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from openimages_det.sampler import TrainingBatchSampler, class_probabilities


def _incidence(image_classes, n_classes):
    rows = [i for i, cs in enumerate(image_classes) for _ in cs]
    cols = [c for cs in image_classes for c in cs]
    return csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(image_classes), n_classes + 1))


# 60 images: class 1 in 48 of them, class 2 in 10, class 3 in 2 (a long tail)
IMAGES = [[1]] * 48 + [[2]] * 10 + [[3], [1, 3]]
M = _incidence(IMAGES, 3)


def _class_share(sampler, epochs=40):
    counts = np.zeros(4)
    for e in range(epochs):
        for i in sampler.epoch_stream(e):
            for c in IMAGES[i]:
                counts[c] += 1
    return counts[1:] / counts[1:].sum()


def test_class_probability_limits():
    n = np.array([100, 10, 1, 0])
    assert np.allclose(class_probabilities(n, 0.0), [1 / 3, 1 / 3, 1 / 3, 0])
    assert np.allclose(class_probabilities(n, 1.0), n / n.sum())
    mid = class_probabilities(n, 0.5)
    assert mid[0] < 100 / 111 and mid[2] > 1 / 111          # between natural and uniform


def test_natural_is_a_permutation_per_epoch():
    s = TrainingBatchSampler(M, 6, sampling="natural", seed=3)
    assert s.batches_per_epoch == 10
    for e in range(3):
        assert sorted(s.epoch_stream(e)) == list(range(60))
    assert not np.array_equal(s.epoch_stream(0), s.epoch_stream(1))


def test_class_aware_and_soft_rebalance_classes():
    natural = _class_share(TrainingBatchSampler(M, 6, sampling="natural"))
    aware = _class_share(TrainingBatchSampler(M, 6, sampling="class_aware"))
    soft = _class_share(TrainingBatchSampler(M, 6, sampling="soft", soft_lambda=0.5))
    assert natural[2] < 0.05 and aware[2] > 0.28              # the rarest class: ~3 % vs ~1/3
    assert natural[2] < soft[2] < aware[2]
    assert aware[0] < soft[0] < natural[0]


def test_rank_slices_are_disjoint_and_world_size_invariant():
    one = TrainingBatchSampler(M, 6, sampling="soft", seed=5)
    ranks = [TrainingBatchSampler(M, 6, sampling="soft", seed=5, rank=r, world_size=2) for r in range(2)]
    for s in (one, *ranks):
        s.set_epoch(2)
    for b1, b_r0, b_r1 in zip(one, *ranks):
        assert b1 == b_r0 + b_r1 and len(b_r0) == 3
    nat = [TrainingBatchSampler(M, 6, seed=5, rank=r, world_size=3) for r in range(3)]
    seen = [i for s in nat for batch in s for i, _ in batch]
    assert sorted(seen) == list(range(60))                   # no image twice in an epoch over the ranks
    with pytest.raises(ValueError, match="divisible"):
        TrainingBatchSampler(M, 6, world_size=4)


def test_resume_mid_epoch_yields_the_rest_of_the_stream():
    s = TrainingBatchSampler(M, 6, sampling="soft", hybrid="mix", seed=1)
    s.set_epoch(4)
    full = list(s)
    s.set_epoch(4, start_batch=7)
    assert len(s) == 3 and list(s) == full[7:]
    flips = [f for batch in full for _, f in batch]
    assert 0 < sum(flips) < len(flips)


def test_hybrid_switch_and_mix():
    s = TrainingBatchSampler(M, 6, sampling="class_aware", hybrid="switch", switch_at=2, seed=0)
    assert sorted(s.epoch_stream(2)) == list(range(60))     # natural from the switch on
    assert sorted(s.epoch_stream(1)) != list(range(60))
    mix = TrainingBatchSampler(M, 6, sampling="class_aware", hybrid="mix", natural_share=0.5, seed=0)
    # the natural half of the batches runs through every image once every two epochs
    nat = np.concatenate([mix.epoch_stream(e).reshape(10, 6)[:, :3].ravel() for e in (0, 1)])
    assert sorted(nat) == list(range(60))
    with pytest.raises(ValueError, match="balanced"):
        TrainingBatchSampler(M, 6, sampling="natural", hybrid="mix")
