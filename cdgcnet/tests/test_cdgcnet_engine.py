"""Inference modes and losses: sliding = whole for a pointwise model, flip TTA = none for a
flip-symmetric model, multi-scale shapes, OHEM's kept pixels, all-ignore batches."""
import pytest
import torch
from torch import nn

from cdgcnet.engine import predict, slide_logits
from cdgcnet.loss import OhemCrossEntropy, SegCriterion, cross_entropy


@pytest.mark.parametrize("size,crop", [((50, 77), (24, 32)), ((20, 30), (24, 32)), ((24, 32), (24, 32))])
def test_sliding_window_equals_whole_image_for_a_1x1_conv_model(size, crop):
    torch.manual_seed(0)
    model = nn.Conv2d(3, 5, 1)
    image = torch.randn(1, 3, *size)
    whole = predict(model, image, "whole")
    slide = predict(model, image, "slide", crop=crop)
    torch.testing.assert_close(slide, whole, atol=1e-5, rtol=0)
    # the windows overlap (stride 2/3 of the crop) and every pixel is covered
    assert torch.isfinite(slide_logits(model, image, crop, stride=(5, 7))).all()


class _Symmetric(nn.Module):
    """A model that commutes with horizontal flips: kernels symmetric left-right."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 4, 3, padding=1)

    def forward(self, x):
        w1 = (self.conv1.weight + self.conv1.weight.flip(-1)) / 2
        w2 = (self.conv2.weight + self.conv2.weight.flip(-1)) / 2
        x = torch.relu(nn.functional.conv2d(x, w1, self.conv1.bias, padding=1))
        return {"final": nn.functional.conv2d(x, w2, self.conv2.bias, padding=1)}


def test_flip_tta_equals_no_flip_for_a_flip_symmetric_model():
    torch.manual_seed(0)
    model, image = _Symmetric(), torch.randn(1, 3, 30, 44)
    # scales whose window layouts are mirror images of themselves (1 and 2 x 2 windows); a window
    # padded on the right (an image smaller than the crop) would break the symmetry by itself
    a = predict(model, image, "ms_flip", crop=(30, 44), scales=(1.0, 1.5), flip=True)
    b = predict(model, image, "ms_flip", crop=(30, 44), scales=(1.0, 1.5), flip=False)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    assert torch.allclose(a.sum(1), torch.ones(1, 30, 44), atol=1e-5)  # averaged probabilities
    # an asymmetric model is changed by flip TTA (the test can fail)
    asym = nn.Conv2d(3, 4, 3, padding=1)
    assert not torch.allclose(predict(asym, image, "ms_flip", crop=(30, 44), scales=(1.0,), flip=True),
                              predict(asym, image, "ms_flip", crop=(30, 44), scales=(1.0,), flip=False))


def test_ms_flip_single_scale_without_flip_is_softmax_of_slide():
    model, image = nn.Conv2d(3, 4, 1), torch.randn(1, 3, 40, 52)
    ms = predict(model, image, "ms_flip", crop=(24, 24), scales=(1.0,), flip=False)
    torch.testing.assert_close(ms, predict(model, image, "slide", crop=(24, 24)).softmax(1))
    with pytest.raises(ValueError, match="--mode"):
        predict(model, image, "tiles")


def test_ohem_keeps_hard_pixels_and_at_least_min_kept():
    # 100 valid pixels; p_gt increases with the index, 20 of them below 0.7
    p = torch.linspace(0.05, 0.99, 100)
    logits = torch.stack([torch.log(p), torch.log((1 - p) / 2), torch.log((1 - p) / 2)]).view(1, 3, 10, 10)
    target = torch.zeros(1, 10, 10, dtype=torch.long)
    kept = OhemCrossEntropy(0.7, min_kept=10).kept(logits, target)
    assert int(kept.sum()) == int((p <= 0.7).sum())  # threshold 0.7 keeps more than 10
    kept = OhemCrossEntropy(0.7, min_kept=90).kept(logits, target)
    assert int(kept.sum()) == 90  # raised to the 90th smallest p_gt
    target[0, 0, 0] = 255
    kept = OhemCrossEntropy(0.7, min_kept=200).kept(logits, target)
    assert int(kept.sum()) == 99 and not kept[0, 0, 0]  # fewer valid than min_kept: all valid kept
    loss = OhemCrossEntropy(0.7, min_kept=10)(logits, target)
    keep = OhemCrossEntropy(0.7, min_kept=10).kept(logits, target)
    assert torch.isclose(loss, -torch.log(p.view(1, 10, 10))[keep].mean(), atol=1e-5)


def test_all_ignore_batch_gives_a_finite_zero_with_gradients():
    logits = torch.randn(2, 4, 8, 8, requires_grad=True)
    target = torch.full((2, 8, 8), 255)
    for loss in (cross_entropy(logits, target), OhemCrossEntropy()(logits, target)):
        assert loss.item() == 0.0
        loss.backward()
        assert torch.equal(logits.grad, torch.zeros_like(logits))
    crit = SegCriterion(min_kept=10)
    out = {k: torch.randn(2, 4, 2, 2, requires_grad=True) for k in ("final", "coarse", "aux")}
    terms = crit(out, target)
    assert terms["loss"].item() == 0.0 and all(torch.isfinite(v) for v in terms.values())


def test_loss_weights():
    torch.manual_seed(0)
    out = {k: torch.randn(1, 3, 4, 4) for k in ("final", "coarse", "aux")}
    target = torch.randint(0, 3, (1, 16, 16))
    terms = SegCriterion(ohem=False, coarse_weight=1.0, aux_weight=0.4)(out, target)
    assert torch.isclose(terms["loss"], terms["loss_final"] + terms["loss_coarse"] + 0.4 * terms["loss_aux"])
