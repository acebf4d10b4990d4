"""Concurrent softmax and the baselines against hand-computed values; test-time scores."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from openimages_det.loss import LabelSetLoss, class_scores, concurrent_softmax_loss, sigmoid_loss, softmax_loss


def _sets(rows, c1):
    y = torch.zeros(len(rows), c1, dtype=torch.bool)
    for n, labels in enumerate(rows):
        y[n, labels] = True
    return y


def test_concurrent_equals_cross_entropy_for_one_label():
    torch.manual_seed(0)
    z = torch.randn(7, 6) * 3
    labels = torch.tensor([0, 1, 5, 2, 0, 3, 4])
    y = F.one_hot(labels, 6).bool()
    ce = F.cross_entropy(z, labels)
    assert torch.allclose(concurrent_softmax_loss(z, y, torch.zeros(6, 6)), ce, atol=1e-6)
    assert torch.allclose(softmax_loss(z, y), ce, atol=1e-6)
    # rates of the background row do not matter: background is never concurrent (r_0j = 0 by construction);
    # for a foreground label r_ij > 0 changes the loss
    r = torch.rand(6, 6)
    r[0] = 0
    bg = labels == 0
    assert torch.allclose(concurrent_softmax_loss(z[bg], y[bg], r), F.cross_entropy(z[bg], labels[bg]), atol=1e-6)
    assert not torch.allclose(concurrent_softmax_loss(z[~bg], y[~bg], r), F.cross_entropy(z[~bg], labels[~bg]))


def test_concurrent_two_labels_by_hand():
    z = np.array([0.5, 2.0, 1.0, -1.0, 0.3])          # background, classes 1..4
    y = np.array([0, 1, 1, 0, 0])                     # the object is labelled 1 and 2
    r = np.zeros((5, 5))
    r[1, 3], r[2, 4], r[2, 3] = 0.5, 0.25, 1.0        # r_13, r_24, r_23
    e = np.exp(z)
    # sigma*_1 = e1 / (e0 + (1 - r13) e3 + (1 - r14) e4 + e1): class 2 is a label, it leaves the sum
    s1 = e[1] / (e[0] + 0.5 * e[3] + e[4] + e[1])
    s2 = e[2] / (e[0] + 0.0 * e[3] + 0.75 * e[4] + e[2])
    want = -(math.log(s1) + math.log(s2)) / 2
    got = concurrent_softmax_loss(torch.tensor(z)[None].float(), torch.tensor(y)[None].bool(), torch.tensor(r).float())
    assert abs(float(got) - want) < 1e-6
    # the softmax baseline makes the two labels compete
    p = e / e.sum()
    assert abs(float(softmax_loss(torch.tensor(z)[None].float(), torch.tensor(y)[None].bool()))
               + 0.5 * (math.log(p[1]) + math.log(p[2]))) < 1e-6


def test_sigmoid_loss_by_hand_and_gradients_finite_for_extreme_logits():
    z = torch.tensor([[3.0, -1.0, 2.0], [0.0, 4.0, -2.0]])
    y = _sets([[0], [1, 2]], 3)
    want = (F.binary_cross_entropy_with_logits(z[:, 1:], y[:, 1:].float(), reduction="sum") / 2)
    assert torch.allclose(sigmoid_loss(z, y), want)
    big = torch.tensor([[1e4, -1e4, 5e3, 0.0], [-1e4, 1e4, 1e4, -5e3]], requires_grad=True)
    r = torch.ones(4, 4)                               # every other class fully concurrent: terms drop
    loss = concurrent_softmax_loss(big, _sets([[0, 2], [1, 2]], 4), r)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(big.grad).all()


def test_concurrent_does_not_push_down_co_labels():
    # gradient on a co-label: softmax pushes it down (positive gradient), concurrent leaves it alone
    z = torch.tensor([[0.0, 1.0, 1.0, 0.0]], requires_grad=True)
    y = _sets([[1, 2]], 4)
    softmax_loss(z, y).backward()
    g_soft = z.grad.clone()
    z.grad = None
    concurrent_softmax_loss(z, y, torch.zeros(4, 4)).backward()
    assert g_soft[0, 1] > -0.5 and z.grad[0, 1] < g_soft[0, 1]     # each label is raised more
    assert z.grad[0, 3] > 0 and z.grad[0, 0] > 0                  # the others are lowered


def test_class_scores():
    torch.manual_seed(1)
    z = torch.randn(5, 4)
    assert torch.allclose(class_scores(z, "softmax"), F.softmax(z, 1)[:, 1:])
    assert torch.allclose(class_scores(z, "concurrent", torch.zeros(4, 4)), F.softmax(z, 1)[:, 1:], atol=1e-6)
    assert torch.allclose(class_scores(z, "sigmoid"), torch.sigmoid(z[:, 1:]))
    r = torch.zeros(4, 4)
    r[1, 2] = 1.0                                      # class 2 never counts against class 1
    e = torch.exp(z)
    want = e[:, 1] / (e[:, 0] + e[:, 1] + e[:, 3])
    assert torch.allclose(class_scores(z, "concurrent", r)[:, 0], want, atol=1e-6)


def test_module_keeps_rates_in_state_dict():
    r = torch.rand(4, 4)
    m = LabelSetLoss("concurrent", 3, r)
    assert torch.equal(m.state_dict()["rates"], r)
    z = torch.randn(3, 4)
    y = _sets([[0], [1], [2, 3]], 4)
    assert torch.allclose(m(z, y), concurrent_softmax_loss(z, y, r))
