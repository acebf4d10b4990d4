"""The detector: the C-logit predictor, EQLRoIHeads end to end on a two-image batch (losses, gradients
to every head, sigmoid scoring, at most 300 detections), the softmax baseline's scoring, the
Section 4.2 option, and predict's RLE masks against torchvision's pasting."""
import math

import pytest
import torch
from pycocotools import mask as mask_utils

from eql.engine import predict
from eql.loss import EqualizationLoss, SoftmaxCELoss
from eql.model import EQLRoIHeads, SigmoidBoxPredictor, build_detector

C = 6
TOY = dict(backbone="tiny", fpn_channels=16, box_head_dim=32, mask_head_dim=16, tiny_widths=(8, 8, 16, 16),
           anchor_sizes=(16, 32, 64, 128, 256), min_size=(96,), max_size=160, rpn_pre_nms_top_n_train=200,
           rpn_post_nms_top_n_train=100, rpn_pre_nms_top_n_test=400, rpn_post_nms_top_n_test=400,
           roi_batch_size_per_image=32, pretrained_backbone="none")


def _batch():
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 96, 112, generator=g), torch.rand(3, 100, 96, generator=g)]
    targets = []
    for boxes, labels in (([[10., 12, 50, 60], [55, 40, 90, 90]], [1, 6]), ([[20., 20, 70, 80]], [3])):
        b = torch.tensor(boxes)
        masks = torch.zeros(len(b), *images[len(targets)].shape[-2:], dtype=torch.uint8)
        for k, (x0, y0, x1, y1) in enumerate(b.int().tolist()):
            masks[k, y0:y1, x0:x1] = 1
        labels_img = torch.zeros(C, dtype=torch.bool)
        labels_img[[0, 2, 4]] = True
        targets.append({"boxes": b, "labels": torch.tensor(labels), "masks": masks, "image_labels": labels_img})
    return images, targets


def test_predictor_has_c_logits_prior_bias_and_class_specific_deltas():
    p = SigmoidBoxPredictor(16, 1230)
    assert p.cls_score.out_features == 1230 and p.bbox_pred.out_features == 1230 * 4
    assert torch.allclose(p.cls_score.bias, torch.full((1230,), -math.log(0.999 / 0.001)))
    logits, _ = p(torch.zeros(3, 16))
    assert torch.allclose(torch.sigmoid(logits), torch.full((3, 1230), 0.001))


def test_roi_heads_end_to_end_two_images():
    torch.manual_seed(0)
    model = build_detector(C, EqualizationLoss(torch.tensor([0.5, 0.3, 0.01, 0.001, 0.2, 0.002]), 0.05),
                           arch="mask_rcnn", **TOY)
    assert isinstance(model.roi_heads, EQLRoIHeads)
    assert model.roi_heads.mask_predictor.mask_fcn_logits.out_channels == C + 1
    images, targets = _batch()
    model.train()
    losses = model(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    for name in ("backbone.body.stem", "backbone.fpn", "rpn.head", "roi_heads.box_head",
                 "roi_heads.box_predictor.cls_score", "roi_heads.box_predictor.bbox_pred", "roi_heads.mask_head",
                 "roi_heads.mask_predictor"):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(name)]
        assert grads and all(g is not None for g in grads), name
        assert any(g.abs().sum() > 0 for g in grads), name

    model.eval()
    logits_seen = []
    h = model.roi_heads.box_predictor.register_forward_hook(lambda m, i, o: logits_seen.append(o[0].detach()))
    with torch.no_grad():
        out = model(images)
    h.remove()
    all_probs = torch.sigmoid(logits_seen[0])
    for o, img in zip(out, images):
        n = len(o["scores"])
        assert 0 < n <= 300
        assert o["labels"].min() >= 1 and o["labels"].max() <= C
        assert o["scores"].min() > 1e-4 and o["scores"].max() < 1
        assert o["masks"].shape == (n, 1, *img.shape[-2:])
        # every score is the sigmoid of one proposal's logit for its class (no softmax, no background)
        cand = all_probs[:, o["labels"] - 1]                               # [proposals, n]
        assert torch.isclose(cand, o["scores"][None], rtol=0, atol=1e-6).any(0).all()
    # predict's RLE masks (pasted over each box only) agree with torchvision's per-mask paste
    with torch.no_grad():
        fast = predict(model, images)
    assert len(fast[0]["rles"]) == len(out[0]["scores"]) and "masks" not in fast[0]
    a = torch.from_numpy(mask_utils.decode(fast[0]["rles"]).transpose(2, 0, 1).astype(bool))
    b = out[0]["masks"][:, 0] >= 0.5
    inter = (a & b).flatten(1).sum(1).float()
    union = (a | b).flatten(1).sum(1).float().clamp(min=1)
    assert (inter / union).mean() > 0.8


def test_detections_capped_at_300_per_image():
    torch.manual_seed(1)
    model = build_detector(40, EqualizationLoss(torch.full((40,), 0.5), 0.1), arch="faster_rcnn", **TOY).eval()
    with torch.no_grad():
        out = model([torch.rand(3, 96, 96), torch.rand(3, 96, 128)])
    assert [len(o["boxes"]) for o in out] == [300, 300]      # prior 0.001 > threshold 1e-4: capped


def test_postprocess_sigmoid_vs_softmax_scoring():
    heads = build_detector(3, EqualizationLoss(torch.ones(3), 0.1), arch="faster_rcnn", **TOY).roi_heads
    logits = torch.tensor([[2.0, -1.0, 0.0]])
    boxes = [torch.tensor([[10.0, 10.0, 40.0, 40.0]])]
    _, scores, labels = heads.postprocess_detections(logits, torch.zeros(1, 12), boxes, [(64, 64)])
    assert torch.allclose(scores[0].sort().values, torch.sigmoid(logits[0]).sort().values)
    soft = build_detector(3, SoftmaxCELoss(), arch="faster_rcnn", score_mode="softmax", **TOY).roi_heads
    assert soft.box_predictor.cls_score.out_features == 4
    logits4 = torch.tensor([[2.0, -1.0, 0.0, 3.0]])                    # background last
    _, s4, l4 = soft.postprocess_detections(logits4, torch.zeros(1, 12), boxes, [(64, 64)])
    expected = torch.softmax(logits4[0], 0)[:3]
    assert torch.allclose(s4[0].sort().values, expected.sort().values) and l4[0].max() <= 3


def test_image_level_rule_changes_only_the_classification_loss():
    torch.manual_seed(0)
    freq = torch.tensor([0.5, 0.3, 0.01, 0.001, 0.2, 0.002])
    images, targets = _batch()
    out = {}
    for rule in (False, True):
        torch.manual_seed(0)
        model = build_detector(C, EqualizationLoss(freq, 0.05), arch="faster_rcnn", use_image_labels=rule, **TOY)
        torch.manual_seed(5)
        out[rule] = model(images, [{k: v for k, v in t.items() if k != "masks"} for t in targets])
    assert out[True]["loss_classifier"] > out[False]["loss_classifier"]
    assert torch.isclose(out[True]["loss_box_reg"], out[False]["loss_box_reg"])


@pytest.mark.parametrize("backbone", ["resnet50", "resnet101"])
def test_real_configs_build_with_1230_classes(backbone):
    model = build_detector(1230, EqualizationLoss(torch.rand(1230), 0.00177), arch="mask_rcnn", backbone=backbone,
                           pretrained_backbone="none")
    rh = model.roi_heads
    assert rh.box_predictor.cls_score.out_features == 1230 and rh.detections_per_img == 300
    assert rh.score_thresh == 1e-4 and rh.fg_bg_sampler.batch_size_per_image == 512
    assert model.transform.min_size == (640, 672, 704, 736, 768, 800) and model.transform.max_size == 1333


def test_train_step_names_the_non_finite_loss_term():
    from eql.engine import train_step

    class Stub(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, images, targets):
            return {"loss_classifier": self.w * float("nan"), "loss_box_reg": self.w * 1.0}

    model = Stub()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(FloatingPointError, match=r"iteration 7: terms \['loss_classifier'\]"):
        train_step(model, [torch.zeros(3, 4, 4)], [{"boxes": torch.zeros(0, 4)}], opt, "cpu", 7)
    assert model.w.item() == 1.0                                         # no step was taken
