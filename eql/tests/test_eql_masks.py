"""Masks to RLE without full-resolution masks (bit-equal to pasting the whole image, as the engine
did before, and to torchvision's paste), the compact detection columns, and the evaluation shared
out over categories (equal to evaluating everything at once)."""
import io
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pycocotools import mask as mask_utils
from torchvision.models.detection.roi_heads import paste_masks_in_image

from eql.detections import Detections, DetectionsBuilder, RLEColumn
from eql.evaluation import evaluate_sharded, write_results_file
from eql.lvis_eval import evaluate, summarize_arrays
from eql.lvis_eval_loop import synthetic_case
from eql.masks import masks_to_rle


def _full_paste(masks, boxes, h, w, threshold=0.5):
    """Every mask pasted over the whole image at once (what engine.predict kept before)."""
    ys = torch.arange(h, dtype=torch.float32) + 0.5
    xs = torch.arange(w, dtype=torch.float32) + 0.5
    x0, y0, x1, y1 = boxes.float().unbind(1)
    gy = (ys[None] - y0[:, None]) / (y1 - y0).clamp(min=1e-6)[:, None] * 2 - 1
    gx = (xs[None] - x0[:, None]) / (x1 - x0).clamp(min=1e-6)[:, None] * 2 - 1
    k = len(boxes)
    grid = torch.stack([gx[:, None, :].expand(k, h, w), gy[:, :, None].expand(k, h, w)], dim=3)
    return F.grid_sample(masks[:, None].float(), grid, align_corners=False)[:, 0] >= threshold


def _encode(masks: torch.Tensor) -> list:
    return mask_utils.encode(np.asfortranarray(masks.numpy().transpose(1, 2, 0).astype(np.uint8)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_region_rle_equals_encoding_the_full_image_paste(seed):
    g = torch.Generator().manual_seed(seed)
    h, w, n = 37 + 40 * seed, 90 - 20 * seed, 40
    xy = torch.rand(n, 2, generator=g) * torch.tensor([w, h]) * 1.3 - 8       # some boxes leave the image
    wh = torch.rand(n, 2, generator=g) * torch.tensor([w, h]) * 0.7 + 0.01
    boxes = torch.cat([xy, xy + wh], 1)
    boxes[0] = torch.tensor([0.0, 0.0, w, h])                                  # whole image
    boxes[1] = torch.tensor([0.3, 0.0, 4.0, h])                                # runs crossing columns
    boxes[2] = torch.tensor([w + 5.0, 3.0, w + 9.0, 8.0])                      # outside: empty
    probs = torch.rand(n, 28, 28, generator=g)
    probs[0], probs[1] = 1.0, 1.0
    assert masks_to_rle(probs, boxes, h, w) == _encode(_full_paste(probs, boxes, h, w))


def test_masks_fill_the_box_as_torchvision_pastes():
    masks = torch.ones(2, 28, 28)
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0], [0.0, 0.0, 5.0, 5.0]])
    out = torch.from_numpy(mask_utils.decode(masks_to_rle(masks, boxes, 64, 48)).transpose(2, 0, 1).astype(bool))
    assert out.shape == (2, 64, 48)
    assert out[0, 20:60, 10:30].all() and out[0].sum() == 40 * 20
    ref = paste_masks_in_image(masks[:, None], boxes, (64, 48))[:, 0] >= 0.5
    assert (out[0] == ref[0]).float().mean() > 0.98


def _dets(seed=0, n_img=6, segm=True):
    rng = np.random.default_rng(seed)
    b = DetectionsBuilder(with_masks=segm)
    for img in range(n_img):
        n = int(rng.integers(0, 5))
        boxes = np.sort(rng.uniform(0, 30, (n, 4)), axis=1)[:, [0, 1, 2, 3]]
        rles = [mask_utils.encode(np.asfortranarray(rng.random((20, 30)) > 0.5, dtype=np.uint8)) for _ in range(n)]
        b.add(100 + img, rng.integers(1, 4, n), rng.random(n), boxes, rles if segm else None)
    return b.build()


def test_detection_columns_take_concat_and_results_json():
    d = _dets()
    assert len(d.masks) == len(d) and d.masks[0]["size"] == [20, 30]
    idx = np.array([len(d) - 1, 0])
    sub = d.take(idx)
    assert sub.masks[0] == d.masks[len(d) - 1] and sub.masks[1] == d.masks[0]
    both = Detections.concat([sub, d])
    assert len(both) == len(d) + 2 and both.masks[2] == d.masks[0]
    np.testing.assert_array_equal(both.image_id[2:], d.image_id)
    assert len(RLEColumn.concat([])) == 0 and len(Detections.concat([Detections.empty(True), d])) == len(d)
    f = io.StringIO()
    d.write_json_items(f)
    res = json.loads("[" + f.getvalue() + "]")
    assert len(res) == len(d) and set(res[0]) == {"image_id", "category_id", "bbox", "score", "segmentation"}
    assert mask_utils.area({**res[0]["segmentation"], "counts": res[0]["segmentation"]["counts"].encode()}) \
        == mask_utils.area(d.masks[0])
    x0, y0, x1, y1 = d.boxes[0].astype(np.float64)
    assert res[0]["bbox"] == [x0, y0, x1 - x0, y1 - y0] and res[0]["score"] == float(d.score[0])


def test_results_file_written_by_the_parallel_writer(tmp_path):
    d = _dets(segm=False)
    assert write_results_file(d, tmp_path / "r.json") == len(d)
    res = json.loads((tmp_path / "r.json").read_text())
    assert [r["image_id"] for r in res] == d.image_id.tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
    write_results_file(Detections.empty(False), tmp_path / "e.json")
    assert json.loads((tmp_path / "e.json").read_text()) == []


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_categories_evaluated_apart_and_put_back_equal_the_whole(iou_type):
    gt, dt = synthetic_case(16, 8, 4, dets_per_img=25, segm=iou_type == "segm")
    whole = evaluate(gt, dt, iou_type=iou_type, return_arrays=True)
    cats = whole["cat_ids"]
    prec, rec = -np.ones_like(whole["precision"]), -np.ones_like(whole["recall"])
    for r in range(3):                                         # three "ranks"
        ks = np.arange(r, len(cats), 3)
        part = evaluate(gt, dt, iou_type=iou_type, categories=cats[ks], return_arrays=True)
        assert (np.delete(part["precision"], ks, axis=2) == -1).all()
        prec[:, :, ks], rec[:, ks] = part["precision"][:, :, ks], part["recall"][:, ks]
    merged = summarize_arrays(prec, rec, cats, whole["freq_of"])
    for k in ("AP", "AP50", "APr", "APc", "APf", "APs", "AR@300"):
        assert merged[k] == whole[k], k


def test_sharded_path_in_one_process_equals_the_evaluator():
    gt, dt = synthetic_case(16, 8, 5, dets_per_img=25, segm=True, quirks=False)
    b = DetectionsBuilder(with_masks=True)
    for img in sorted({d["image_id"] for d in dt}):
        ds = [d for d in dt if d["image_id"] == img]
        boxes = np.asarray([d["bbox"] for d in ds], np.float32)
        boxes[:, 2:] += boxes[:, :2]
        b.add(img, [d["category_id"] for d in ds], [d["score"] for d in ds], boxes,
              [{**d["segmentation"], "counts": d["segmentation"]["counts"].encode()} for d in ds])
    dets = b.build()
    got = evaluate_sharded(gt, dets, ("bbox", "segm"))
    for t in ("bbox", "segm"):
        ref = evaluate(gt, dets.eval_columns(), t)
        assert got[t]["AP"] == ref["AP"] and got[t]["APr"] == ref["APr"] and ref["AP"] > 0.05
