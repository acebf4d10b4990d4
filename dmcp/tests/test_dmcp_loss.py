"""The budget loss's pieces (official log_l1, written in MFLOPs; our API takes multiply-adds),
in-place distillation and label smoothing against the official formulas."""
import math

import pytest
import torch
import torch.nn.functional as F

from dmcp.loss import budget_loss, classification_loss, distill_kl


@pytest.mark.parametrize("e, t, expected", [
    (100.0, 300.0, math.log(200.0)),             # below the band, |E - T| = 200: ratio 1
    (50.0, 300.0, math.log(0.1 * 250.0)),        # far below (> 200 MFLOPs): ratio 0.1
    (290.0, 300.0, 0.0),                         # inside [0.95 T, T): free
    (280.0, 300.0, math.log(20.0)),              # just below the band
    (285.0, 300.0, 0.0),                         # exactly 0.95 T: free
    (300.0, 300.0, math.log(15.0)),              # at T: log |E - 0.95 T|
    (400.0, 300.0, math.log(115.0)),             # above
    (2500.0, 2200.0, math.log(0.1 * 410.0)),     # above and far: ratio 0.1 on |E - 0.95 T|
    (1000.0, 2200.0, math.log(0.1 * 1200.0)),
])
def test_log_l1_piecewise_values(e, t, expected):
    loss = budget_loss(torch.tensor(e * 1e6, dtype=torch.float64), t * 1e6)
    assert float(loss) == pytest.approx(expected, abs=1e-12)


def test_log_l1_gradient_pulls_into_the_band():
    for e, sign in ((100.0, -1), (400.0, +1)):
        x = torch.tensor(e * 1e6, dtype=torch.float64, requires_grad=True)
        budget_loss(x, 300e6).backward()
        assert math.copysign(1, float(x.grad)) == sign
    x = torch.tensor(290e6, dtype=torch.float64, requires_grad=True)
    budget_loss(x, 300e6).backward()
    assert float(x.grad) == 0.0


def test_other_budget_losses_and_bad_kind():
    x = torch.tensor(250e6, dtype=torch.float64)
    assert float(budget_loss(x, 300e6, "l1")) == 50.0
    assert float(budget_loss(x, 300e6, "l2")) == 2500.0
    with pytest.raises(ValueError, match="unknown budget loss"):
        budget_loss(x, 300e6, "huber")


def _official_kl(student, teacher, t):
    loss = torch.nn.KLDivLoss(reduction="none")(F.log_softmax(student / t, dim=1),
                                                 F.softmax(teacher / t, dim=1)) * (t * t)
    return torch.mean(torch.sum(loss, dim=-1))


@pytest.mark.parametrize("t", [1.0, 2.0])
def test_distillation_equals_the_official_kl(t):
    g = torch.Generator().manual_seed(0)
    s, te = torch.randn(8, 10, generator=g, requires_grad=True), torch.randn(8, 10, generator=g)
    ours = distill_kl(s, te, t)
    torch.testing.assert_close(ours, _official_kl(s, te, t))
    ours.backward()
    assert s.grad is not None
    assert float(distill_kl(te, te, t)) == pytest.approx(0.0, abs=1e-6)


def test_label_smoothing_equals_the_official_loss():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(6, 1000, generator=g), torch.randint(0, 1000, (6,), generator=g)
    s = 0.1
    one_hot = torch.full_like(x, s / 1000).scatter_(1, y[:, None], 1 - s + s / 1000)
    official = -(F.log_softmax(x, 1) * one_hot).sum() / x.shape[0]
    torch.testing.assert_close(classification_loss(x, y, s), official)
    torch.testing.assert_close(classification_loss(x, y), F.cross_entropy(x, y))
