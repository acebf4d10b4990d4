"""The label-set RoI heads on two images, ancestor emission, and fp32 box decoding under bf16 autocast."""
from __future__ import annotations

import torch

from openimages_det.hierarchy import load_hierarchy
from openimages_det.loss import LabelSetLoss
from openimages_det.model import ancestor_table, build_detector

CLASSES = ["/m/p", "/m/a", "/m/b"]                    # a and b are children of p
TREE = {"LabelName": "/m/root", "Subcategory": [{"LabelName": "/m/p", "Subcategory": [{"LabelName": "/m/a"},
                                                                                      {"LabelName": "/m/b"}]}]}


def _model(loss="concurrent", emit=True, score="softmax"):
    torch.manual_seed(0)
    rates = torch.zeros(4, 4)
    rates[2, 1] = 0.5
    return build_detector(3, LabelSetLoss(loss, 3, rates), backbone="tiny", pretrained="none", score_mode=score,
                          emit_ancestors=emit, ancestors=ancestor_table(CLASSES, load_hierarchy(TREE)),
                          min_size=(64,), max_size=64, anchor_sizes=(8, 16, 32, 64, 128), rpn_pre_nms_train=100,
                          rpn_post_nms_train=50, rpn_pre_nms_test=100, rpn_post_nms_test=50, roi_batch_size=16,
                          score_thresh=0.0, detections_per_img=30, fpn_channels=16, box_head_dim=32)


def _targets():
    sets = torch.zeros(2, 4, dtype=torch.bool)
    sets[0, [2, 1]] = True                             # object 0: a and p
    sets[1, 3] = True                                  # object 1: b
    t0 = {"boxes": torch.tensor([[4.0, 4.0, 30.0, 30.0], [34.0, 34.0, 60.0, 60.0]]), "labels": torch.tensor([2, 3]),
          "label_sets": sets}
    t1 = {"boxes": torch.tensor([[10.0, 20.0, 50.0, 44.0]]), "labels": torch.tensor([3]), "label_sets": sets[1:]}
    return [t0, t1]


def test_roi_heads_train_on_label_sets_of_two_images():
    model = _model()
    model.train()
    images = [torch.rand(3, 64, 64), torch.rand(3, 64, 64)]
    targets = _targets()
    losses = model(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    w = model.roi_heads.box_predictor.cls_score.weight.grad
    assert w[1].abs().sum() > 0 and w[2].abs().sum() > 0 and w[3].abs().sum() > 0   # p, a, b all trained
    # the sampled proposals take the whole label set of their object
    rh = model.roi_heads
    matched = [torch.tensor([0, 1, 0]), torch.tensor([0, 0])]
    labels = [torch.tensor([2, 3, 0]), torch.tensor([3, 0])]
    sets = rh.sample_label_sets(targets, matched, labels)
    assert sets.tolist() == [[False, True, True, False], [False, False, False, True], [True, False, False, False],
                             [False, False, False, True], [True, False, False, False]]


def test_emit_ancestors_copies_detections_to_parents():
    rh = _model().roi_heads
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0], [5.0, 5.0, 9.0, 9.0]])
    b, s, lab = rh._with_ancestors(boxes, torch.tensor([0.9, 0.5, 0.3]), torch.tensor([2, 1, 3]))
    assert lab.tolist() == [2, 1, 3, 1, 1]             # a -> p, b -> p; p has no ancestor
    assert torch.equal(s, torch.tensor([0.9, 0.5, 0.3, 0.9, 0.3])) and torch.equal(b[3], boxes[0])
    model = _model()
    model.eval()
    with torch.no_grad():
        out = model([torch.rand(3, 64, 64)])[0]
    assert out["boxes"].dtype == torch.float32 and len(out["boxes"]) <= 30
    assert set(out["labels"].tolist()) <= {1, 2, 3}


def test_decoding_stays_fp32_under_bf16_autocast():
    model = _model(score="concurrent")
    model.eval()
    image = [torch.rand(3, 64, 64)]
    seen = {}

    def keep(_, __, out):
        seen["proposals"] = out[0]
    model.rpn.register_forward_hook(keep)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(image)[0]
    assert seen["proposals"][0].dtype == torch.float32
    assert out["boxes"].dtype == torch.float32 and out["scores"].dtype == torch.float32
    with torch.no_grad():
        ref = model(image)[0]
    # bf16 features move the boxes a little, never to bf16's coordinate grid (steps of 0.25 above 32 px)
    n = min(len(ref["boxes"]), len(out["boxes"]), 5)
    assert n > 0 and (out["boxes"][:n] - ref["boxes"][:n]).abs().max() < 8.0
    assert (out["boxes"] * 4 != torch.round(out["boxes"] * 4)).any()
