import math

import torch

from bsnpp.labels import valid_map_mask
from bsnpp.loss import BSNPPLoss, boundary_bce, iou_balanced_reg_loss, map_cls_loss, scale_bins


def test_boundary_bce_hand_worked():
    # 4 entries, 1 positive: ratio 4, coef1 = 2, coef0 = 0.5*4/3 = 2/3
    pred = torch.tensor([0.8, 0.1, 0.2, 0.4])
    tgt = torch.tensor([0.9, 0.0, 0.3, 0.1])
    eps = 1e-6
    expected = -(2 * math.log(0.8 + eps) + (2 / 3) * (math.log(0.9 + eps) + math.log(0.8 + eps)
                                                        + math.log(0.6 + eps))) / 4
    torch.testing.assert_close(boundary_bce(pred, tgt), torch.tensor(expected), atol=1e-6, rtol=0)


def test_no_positive_anywhere_is_finite():
    """BMN divides by N+ = 0 here and returns NaN."""
    T = 8
    mask = torch.tensor(valid_map_mask(T, T))
    pred = torch.rand(2, T, T, requires_grad=True)
    gt = torch.zeros(2, T, T)
    for bins in (None, scale_bins(T, T, 4)):
        for fn in (iou_balanced_reg_loss, map_cls_loss):
            loss = fn(pred, gt, mask, bins)
            assert torch.isfinite(loss)
            loss.backward()
            assert torch.isfinite(pred.grad).all()
    assert torch.isfinite(boundary_bce(torch.rand(5), torch.zeros(5)))
    assert torch.isfinite(boundary_bce(torch.rand(5), torch.ones(5)))


def test_cls_loss_matches_bmn_formula_when_both_classes_present():
    T = 6
    mask = torch.tensor(valid_map_mask(T, T))
    torch.manual_seed(0)
    gt = torch.rand(1, T, T) * mask
    gt[0, 0, 0] = 0.95
    pred = torch.rand(1, T, T).clamp(0.05, 0.95)
    pmask = (gt > 0.9).float()
    nmask = (gt <= 0.9).float() * mask
    n_pos, n = pmask.sum(), pmask.sum() + nmask.sum()
    ratio = n / n_pos
    coef0, coef1 = 0.5 * ratio / (ratio - 1), 0.5 * ratio
    ref = -(coef1 * torch.log(pred + 1e-6) * pmask + coef0 * torch.log(1 - pred + 1e-6) * nmask).sum() / n
    torch.testing.assert_close(map_cls_loss(pred, gt, mask), ref)


def test_reg_loss_uses_all_high_cells():
    T = 5
    mask = torch.tensor(valid_map_mask(T, T))
    gt = torch.zeros(1, T, T)
    gt[0, 1, 1] = 0.8
    gt[0, 2, 0] = 0.75
    pred = torch.zeros(1, T, T)
    # only high cells are sampled (no mid/low cells exist; BMN would select every cell here)
    expected = 0.5 * (0.8 ** 2 + 0.75 ** 2) / 2
    torch.testing.assert_close(iou_balanced_reg_loss(pred, gt, mask), torch.tensor(expected))


def test_scale_bins_log_spaced():
    b = scale_bins(100, 100, 4)
    assert b[0] == 0 and b[99] == 3 and (b.diff() >= 0).all()
    assert [int((b == k).sum()) for k in range(4)] == [3, 6, 22, 69]


def test_scale_balanced_cls_splits_positive_mass_equally():
    T = 20
    mask = torch.tensor(valid_map_mask(T, T))
    bins = scale_bins(T, T, 2)
    gt = torch.zeros(1, T, T)
    short = (bins == 0).nonzero()[0].item()
    long_ = (bins == 1).nonzero()[0].item()
    gt[0, short, :4] = 0.95  # four short positives
    gt[0, long_, 0] = 0.95  # one long positive
    pred = torch.full((1, T, T), 0.5)
    pred[0, long_, 0] = 0.1  # the rare long positive is badly predicted
    plain = map_cls_loss(pred, gt, mask)
    balanced = map_cls_loss(pred, gt, mask, bins)
    assert balanced > plain  # the rare scale weighs more once balanced


def test_full_objective_reduces_to_bmn():
    T = 6
    crit = BSNPPLoss(T, reg_weight=10, pem_weight=1, scale_balanced=False)
    torch.manual_seed(1)
    out = {"start": torch.rand(2, T), "end": torch.rand(2, T),
           "reg": torch.rand(2, 1, T, T), "cls": torch.rand(2, 1, T, T)}
    tgt = {"start": torch.rand(2, T), "end": torch.rand(2, T), "iou_map": torch.rand(2, T, T)}
    torch.manual_seed(5)
    got = crit(out, tgt)
    torch.manual_seed(5)
    mask = torch.tensor(valid_map_mask(T, T))
    ref = (boundary_bce(out["start"], tgt["start"]) + boundary_bce(out["end"], tgt["end"])
           + 10 * iou_balanced_reg_loss(out["reg"][:, 0], tgt["iou_map"], mask)
           + map_cls_loss(out["cls"][:, 0], tgt["iou_map"], mask))
    torch.testing.assert_close(got["total"], ref)
    assert "consistency" not in got
