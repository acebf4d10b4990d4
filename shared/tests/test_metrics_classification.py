"""Tests of shared.metrics.classification: hand-worked top-k, ties, meters and multi-label mAP."""
import math

import numpy as np
import pytest
import torch

from shared.metrics.classification import accuracy, average_precision, mean_average_precision


def test_accuracy_hand_worked():
    output = torch.tensor([[0.1, 0.5, 0.4],    # target 2 is 2nd
                           [0.8, 0.1, 0.1],    # target 0 is 1st
                           [0.2, 0.3, 0.5],    # target 1 is 2nd
                           [0.1, 0.2, 0.7]])   # target 0 is 3rd
    target = torch.tensor([2, 0, 1, 0])
    assert accuracy(output, target, topk=(1, 2, 3)) == [25.0, 75.0, 100.0]
    assert all(isinstance(v, float) for v in accuracy(output, target))


def test_accuracy_ties_lower_class_index_first():
    output = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.3, 0.3, 0.3]])
    assert accuracy(output[:1], torch.tensor([0]), topk=(1,)) == [100.0]
    assert accuracy(output[1:2], torch.tensor([1]), topk=(1, 2)) == [0.0, 100.0]
    assert accuracy(output[2:], torch.tensor([2]), topk=(1, 2, 3)) == [0.0, 0.0, 100.0]


def test_accuracy_k_larger_than_classes_is_clamped_and_one_hot_target():
    output = torch.tensor([[0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
    target = torch.tensor([1, 2, 0])
    assert accuracy(output, target, topk=(1, 5)) == pytest.approx([100 / 3, 100.0])
    one_hot = torch.nn.functional.one_hot(target, 3).float()
    assert accuracy(output, one_hot, topk=(1, 2)) == accuracy(output, target, topk=(1, 2))
    assert accuracy(output.numpy(), target.numpy(), topk=(1,)) == pytest.approx([100 / 3])


def test_accuracy_matches_torchvision_reference_without_ties():
    g = torch.Generator().manual_seed(0)
    output = torch.randn(64, 10, generator=g)
    target = torch.randint(0, 10, (64,), generator=g)
    _, pred = output.topk(5, 1, True, True)
    correct = pred.t().eq(target[None])
    ref = [float(correct[:k].flatten().sum()) * 100.0 / 64 for k in (1, 5)]
    assert accuracy(output, target) == pytest.approx(ref, abs=1e-12)


def test_accuracy_errors():
    with pytest.raises(ValueError):
        accuracy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError):
        accuracy(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError):
        accuracy(torch.zeros(2, 3), torch.tensor([0, 1]), topk=(0,))


def test_average_precision_hand_worked():
    # ranks: P N P N -> precision at the positives 1 and 2/3, recall steps 1/2
    assert average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # tie at 0.9 forms one operating point: (tp 1, fp 1) -> P 1/2, R 1/2; then P 2/3, R 1
    assert average_precision([0.9, 0.9, 0.5], [0, 1, 1]) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    assert average_precision([0.9, 0.9, 0.5], [1, 0, 1]) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    assert average_precision([0.1, 0.2, 0.3], [1, 1, 1]) == pytest.approx(1.0)
    assert math.isnan(average_precision([0.1, 0.2], [0, 0]))


def _sklearn_style_ap(s, y):
    """Reference: loop over distinct thresholds, sum (R_n - R_{n-1}) * P_n."""
    if y.sum() == 0:
        return float("nan")
    ap, prev_r = 0.0, 0.0
    for t in np.unique(s)[::-1]:
        pred = s >= t
        tp = float((pred & (y == 1)).sum())
        p, r = tp / pred.sum(), tp / y.sum()
        ap += (r - prev_r) * p
        prev_r = r
    return ap


def test_mean_average_precision_vs_reference_with_ties_and_empty_class():
    rng = np.random.default_rng(0)
    scores = np.round(rng.random((60, 6)), 1)      # many ties
    labels = (rng.random((60, 6)) < 0.3).astype(int)
    labels[:, 4] = 0                               # a class without positives
    m, ap = mean_average_precision(scores, labels)
    ref = np.array([_sklearn_style_ap(scores[:, c], labels[:, c]) for c in range(6)])
    assert math.isnan(ap[4]) and math.isnan(ref[4])
    np.testing.assert_allclose(ap[[0, 1, 2, 3, 5]], ref[[0, 1, 2, 3, 5]], rtol=0, atol=1e-12)
    assert m == pytest.approx(np.nanmean(ref), abs=1e-12)
    m_t, ap_t = mean_average_precision(torch.from_numpy(scores), torch.from_numpy(labels).bool())
    assert m_t == pytest.approx(m) and np.allclose(ap_t, ap, equal_nan=True)
    assert math.isnan(mean_average_precision(scores, np.zeros_like(labels))[0])
    with pytest.raises(ValueError):
        mean_average_precision(scores, labels * 2)
