"""The detector's precision rule: anchors, decoding, proposals and detections stay fp32 under a
bf16 autocast (on CPU here; the same code leaves CUDA autocast)."""
import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import box_iou

from shared.box_precision import FP32AnchorGenerator, FP32BoxCoder
from topo_connectivity import build_model
from topo_connectivity.detector import build_detector, fpn_layers


def _detector():
    torch.manual_seed(0)
    bb = build_model("toponet", "learned", 10, channels=8, nodes=[2, 3, 3], stem_strides=[2, 1])
    return build_detector(bb, 3, freeze_bn=True, fpn_channels=16, min_size=96, max_size=128,
                          anchor_sizes=(16, 32, 64, 128), rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=50,
                          box_head_dim=32, box_score_thresh=0.0).eval()


def test_fpn_takes_the_last_stage_of_each_stride():
    bb = build_model("mobilenet_v2", "residual", 10)
    assert fpn_layers(bb) == ["stage2", "stage3", "stage5", "stage7"]  # strides 4, 8, 16, 32
    assert fpn_layers(build_model("resnet50", "residual", 10)) == ["stage1", "stage2", "stage3", "stage4"]


def test_anchors_and_decoding_are_fp32_under_autocast():
    images = ImageList(torch.zeros(1, 3, 640, 640), [(640, 640)])
    feats = [torch.zeros(1, 8, 20, 20, dtype=torch.bfloat16)]
    stock = AnchorGenerator(((512,),), ((1.0,),))
    ours = FP32AnchorGenerator(((512,),), ((1.0,),))
    a_stock, a_ours = stock(images, feats)[0], ours(images, feats)[0]
    assert a_stock.dtype == torch.bfloat16 and a_ours.dtype == torch.float32  # torchvision follows the features
    assert torch.equal(a_ours, ours(images, [f.float() for f in feats])[0])
    codes = torch.randn(a_ours.shape[0], 4).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        decoded = FP32BoxCoder((1.0, 1.0, 1.0, 1.0)).decode(codes, [a_ours])
    assert decoded.dtype == torch.float32
    assert torch.equal(decoded, FP32BoxCoder((1.0, 1.0, 1.0, 1.0)).decode(codes.float(), [a_ours]))


def test_detections_are_fp32_and_close_to_an_fp32_run_under_autocast():
    model = _detector()
    images = [torch.rand(3, 96, 120), torch.rand(3, 110, 96)]
    with torch.no_grad():
        ref = model(images)
        feats = model.backbone(model.transform(images)[0].tensors)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(images)
            batch, _ = model.transform(images)
            proposals, _ = model.rpn(batch, model.backbone(batch.tensors))
    assert all(p.dtype == torch.float32 for p in proposals)
    assert all(d["boxes"].dtype == torch.float32 and d["scores"].dtype == torch.float32 for d in out)
    assert any(f.dtype == torch.float32 for f in feats.values())
    # bf16 changes the features a little, not the box arithmetic: the fp32 run's top box is found
    # again (IoU >= 0.8) among the autocast run's top ten
    for r, o in zip(ref, out):
        assert len(r["boxes"]) and len(o["boxes"])
        assert box_iou(r["boxes"][:1], o["boxes"][:10]).max() >= 0.8
