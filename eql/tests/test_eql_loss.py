"""The losses against the official EQL vectors (tztztztztz/eql.detectron2 EQL, same formula in the
EQLv2 repository) and the weight-matrix semantics, the softmax EQL, the baselines and EQLv2.

fixtures/eql_tiny.json: copy of vectors/eql/eql_tiny (C = 6, hand-readable).
fixtures/eql_lvis05.npz: vectors/eql/eql_lvis05 (C = 1230, N = 96, 24 foreground): the logits and
gt classes, the expected loss (float64 and float32) and d loss / d logits for the 24 foreground and
8 background rows. The vector does not store the LVIS v0.5 frequencies; the tail set (915 classes:
454 r + 461 c) is stored as a bit mask taken from the official weight matrix, and freq_info is
rebuilt from it (lambda / 2 for tail classes, 2 lambda otherwise), which is all the loss depends on.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from eql.loss import (
    EQLv2,
    EqualizationLoss,
    SoftmaxEQL,
    build_classification_loss,
    eql_weights,
    equalization_loss,
    prior_bias,
    sigmoid_bce_loss,
    softmax_ce_loss,
    softmax_equalization_loss,
    tail_mask,
    torchvision_to_gt_classes,
)

FIX = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def tiny():
    return json.loads((FIX / "eql_tiny.json").read_text())


@pytest.fixture(scope="module")
def lvis05():
    d = np.load(FIX / "eql_lvis05.npz")
    tail = np.unpackbits(d["tail"])[:1230].astype(bool)
    lam = 0.00177
    freq = np.where(tail, lam / 2, 2 * lam)
    return {k: d[k] for k in d.files} | {"tail": tail, "freq": freq, "lambda": lam}


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_tiny_vector_loss_weights_and_gradient(tiny, dtype, tol):
    logits = torch.tensor(tiny["logits"], dtype=dtype, requires_grad=True)
    gt = torch.tensor(tiny["gt_classes"])
    freq = torch.tensor(tiny["freq_info"])
    loss = equalization_loss(logits, gt, freq, tiny["lambda"])
    loss.backward()
    assert abs(loss.item() - tiny["loss"]) <= tol * max(1.0, abs(tiny["loss"]))
    np.testing.assert_allclose(logits.grad.double().numpy(), np.array(tiny["grad"]), rtol=0, atol=tol)
    target = torch.zeros(5, 7, dtype=dtype)
    target[torch.arange(5), gt] = 1
    w = eql_weights(gt, tail_mask(freq, tiny["lambda"]), target[:, :6])
    np.testing.assert_array_equal(w.numpy(), np.array(tiny["eql_w"]))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_lvis05_vector_loss_and_gradient(lvis05, dtype, tol):
    logits = torch.tensor(lvis05["logits"], dtype=dtype, requires_grad=True)
    gt = torch.tensor(lvis05["gt_classes"].astype(np.int64))
    module = EqualizationLoss(lvis05["freq"], lvis05["lambda"])
    assert module.num_tail == 915
    loss = module(logits, gt)
    loss.backward()
    expected = float(lvis05["loss"]) if dtype == torch.float64 else float(lvis05["loss_float32"])
    assert abs(loss.item() - expected) <= tol * abs(expected)
    rows = lvis05["grad_rows"]
    np.testing.assert_allclose(logits.grad[rows].double().numpy(), lvis05["grad"].astype(np.float64),
                               rtol=0, atol=tol if dtype == torch.float64 else 1e-7)


def test_weight_semantics_background_keeps_all_negatives_tail_spared_only_by_other_fg():
    # classes: 0 frequent, 1 and 2 tail; rows: fg class 0, fg class 1, background
    freq = torch.tensor([0.5, 1e-4, 2e-4])
    gt = torch.tensor([0, 1, 3])
    target = torch.zeros(3, 4)
    target[torch.arange(3), gt] = 1
    w = eql_weights(gt, tail_mask(freq, 1e-3), target[:, :3])
    assert w[2].tolist() == [1, 1, 1]            # background proposal: every negative term kept
    assert w[0].tolist() == [1, 0, 0]            # fg of a frequent class spares both tail classes
    assert w[1].tolist() == [1, 1, 0]            # fg of tail class 1 keeps its own positive term
    # the gradient of a tail class comes only from its positives and from background proposals
    logits = torch.zeros(3, 3, requires_grad=True)
    equalization_loss(logits, gt, freq, 1e-3).backward()
    g = logits.grad
    assert g[0, 1] == 0 and g[0, 2] == 0 and g[1, 2] == 0
    assert g[2, 1] > 0 and g[2, 2] > 0 and g[1, 1] < 0


def test_keep_mask_section_4_2_option_restores_weights():
    freq = torch.tensor([0.5, 1e-4, 2e-4])
    logits = torch.randn(2, 3)
    gt = torch.tensor([0, 3])
    keep = torch.tensor([[False, True, False], [False, False, False]])
    a = equalization_loss(logits, gt, freq, 1e-3, keep_mask=keep)
    b = equalization_loss(logits, gt, freq, 1e-3)
    assert a > b
    assert torch.isclose(equalization_loss(logits, gt, freq, 1e-3, keep_mask=torch.ones(2, 3, dtype=torch.bool)),
                         sigmoid_bce_loss(logits, gt))


def test_lambda_zero_equals_sigmoid_baseline_and_tail_count_float32_rule():
    logits, gt = torch.randn(7, 5), torch.tensor([0, 1, 5, 5, 4, 2, 5])
    freq = torch.rand(5)
    assert torch.isclose(equalization_loss(logits, gt, freq, 0.0), sigmoid_bce_loss(logits, gt))
    # LVIS v0.5: 100 images / 56,740 is tail, 101 is not
    counts = torch.tensor([100.0, 101.0]) / 56740
    assert tail_mask(counts, 0.00177).tolist() == [True, False]


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        equalization_loss(torch.zeros(2, 3), torch.tensor([0, 4]), torch.zeros(3), 0.1)
    with pytest.raises(ValueError, match="freq_info"):
        equalization_loss(torch.zeros(2, 3), torch.tensor([0, 3]), torch.zeros(4), 0.1)
    with pytest.raises(ValueError, match=r"\[N, C\]"):
        equalization_loss(torch.zeros(3), torch.tensor([0]), torch.zeros(3), 0.1)
    assert equalization_loss(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), torch.zeros(3), 0.1) == 0


def test_softmax_ce_baseline_background_last_and_label_conversion():
    logits = torch.randn(4, 4)  # C = 3, background column 3
    gt = torch.tensor([0, 3, 2, 3])
    assert torch.isclose(softmax_ce_loss(logits, gt), torch.nn.functional.cross_entropy(logits, gt))
    assert torchvision_to_gt_classes(torch.tensor([0, 1, 3]), 3).tolist() == [3, 0, 2]


def test_softmax_eql_matches_the_formula_and_gamma_zero_is_cross_entropy():
    torch.manual_seed(0)
    z = torch.randn(6, 5, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    freq = torch.tensor([0.5, 1e-4, 0.3, 1e-4, 2e-4])
    beta = (torch.rand(6, 5) < 0.7).double()
    loss = softmax_equalization_loss(z, y, freq, 1e-3, beta=beta, reduction="none")
    onehot = torch.nn.functional.one_hot(y, 5).double()
    w = 1 - beta * (freq < 1e-3).double()[None] * (1 - onehot)
    p = torch.exp(z) / (w * torch.exp(z)).sum(1, keepdim=True)
    torch.testing.assert_close(loss, -torch.log(p.gather(1, y[:, None])[:, 0]))
    ce = torch.nn.functional.cross_entropy(z, y)
    torch.testing.assert_close(softmax_equalization_loss(z, y, freq, 1e-3, gamma=0.0), ce)
    m = SoftmaxEQL(freq, 1e-3, gamma=0.9).eval()
    torch.testing.assert_close(m(z, y), ce)


def test_eqlv2_first_step_is_bce_then_reweights_and_state_is_a_buffer():
    loss = EQLv2(num_classes=3)
    logits = torch.randn(8, 3)
    gt = torch.tensor([0, 0, 1, 3, 3, 3, 3, 3])
    first = loss(logits, gt)
    assert torch.isclose(first, sigmoid_bce_loss(logits, gt))
    pos_w, neg_w = loss.weights()
    assert pos_w.shape == (3,) and torch.all((neg_w > 0) & (neg_w <= 1)) and torch.all(pos_w >= 1)
    assert neg_w[2] < neg_w[0]                     # class 2 never seen positive: negatives suppressed
    assert set(loss.state_dict()) == {"pos_grad", "neg_grad", "started"}


def test_builder_and_prior_bias():
    assert abs(prior_bias(0.001) - (-6.906754778648554)) < 1e-12
    for name in ("ce", "sigmoid", "eql", "eqlv2"):
        build_classification_loss(name, 4, freq_info=torch.rand(4), lambda_=0.1)
    with pytest.raises(ValueError, match="unknown loss"):
        build_classification_loss("focal", 4)
