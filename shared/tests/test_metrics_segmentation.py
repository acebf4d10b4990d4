"""shared.metrics.segmentation: cityscapesScripts reference vectors, hand-worked and edge cases."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from shared.metrics.segmentation import CITYSCAPES_CATEGORIES, ConfusionMatrix

FIX = Path(__file__).parent / "fixtures" / "seg"
CASES = ["case_small_3x64x128", "case_predignore_2x96x160"]
TOL = 1e-12


def _nan(values):
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _check_against(res, e):
    iou, acc = _nan(e["per_class_IoU_list_trainId_order"]), _nan(e["per_class_Acc"])
    np.testing.assert_array_equal(np.isnan(res["iou"]), np.isnan(iou))
    np.testing.assert_allclose(res["iou"], iou, rtol=0, atol=TOL)
    np.testing.assert_array_equal(np.isnan(res["acc"]), np.isnan(acc))
    np.testing.assert_allclose(res["acc"], acc, rtol=0, atol=TOL)
    assert abs(res["miou"] - e["mIoU"]) <= TOL
    assert abs(res["aacc"] - e["aAcc"]) <= TOL
    assert res["num_classes_in_mean"] == e["num_classes_in_mean"]
    np.testing.assert_array_equal(res["matrix"], np.array(e["confusion_19x19_rows_gt_cols_pred"]))
    np.testing.assert_array_equal(res["pred_outside"], e["gt_pixels_predicted_as_ignore_per_class"])
    assert res["num_valid_pixels"] == e["num_valid_gt_pixels"]
    for name, v in e["category_IoU_cityscapesScripts"].items():
        if v is None:  # 'void': no evaluated class
            assert name not in res["category_iou"]
        else:
            assert abs(res["category_iou"][name] - v) <= TOL
    assert abs(res["category_miou"] - e["category_mIoU_cityscapesScripts"]) <= TOL


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("backend", ["numpy", "torch", "torch_batched"])
def test_vectors(case, backend):
    d = np.load(FIX / case / "maps.npz")
    e = json.loads((FIX / case / "expected.json").read_text())
    cm = ConfusionMatrix(e["num_classes"], ignore_index=e["ignore_index"])
    if backend == "torch_batched":
        cm.update(torch.from_numpy(d["pred"]), torch.from_numpy(d["gt"]))
    else:
        for gt, pred in zip(d["gt"], d["pred"]):
            if backend == "torch":
                gt, pred = torch.from_numpy(gt), torch.from_numpy(pred)
            cm.update(pred, gt)
    _check_against(cm.compute(categories=CITYSCAPES_CATEGORIES), e)


def test_vectors_from_png():
    from PIL import Image

    case = FIX / "case_predignore_2x96x160"
    e = json.loads((case / "expected.json").read_text())
    cm = ConfusionMatrix(19)
    for gt_path in sorted((case / "gt_trainIds").glob("*.png")):
        gt = np.array(Image.open(gt_path))
        pred = np.array(Image.open(case / "pred_trainIds" / gt_path.name))
        cm.update(pred, gt)
    _check_against(cm.compute(categories=CITYSCAPES_CATEGORIES), e)


def test_hand_worked():
    # valid pixels (gt, pred): (0,0) (0,1) (1,1) (1,255) (2,2); (255, 0) is skipped.
    gt = np.array([[0, 0, 1], [1, 2, 255]], dtype=np.uint8)
    pred = np.array([[0, 1, 1], [255, 2, 0]], dtype=np.uint8)
    res = ConfusionMatrix(3).update(pred, gt).compute()
    np.testing.assert_array_equal(res["matrix"], [[1, 1, 0], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(res["pred_outside"], [0, 1, 0])
    # IoU: c0 = 1/(1+0+1), c1 = 1/(1+1+1) (FN includes the void prediction), c2 = 1
    np.testing.assert_allclose(res["iou"], [1 / 2, 1 / 3, 1.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(res["acc"], [1 / 2, 1 / 2, 1.0], rtol=0, atol=1e-15)
    assert res["aacc"] == 3 / 5
    assert res["miou"] == pytest.approx((1 / 2 + 1 / 3 + 1) / 3, abs=1e-15)
    assert res["num_valid_pixels"] == 5


def test_all_ignore_image_counts_nothing():
    cm = ConfusionMatrix(4)
    cm.update(np.full((5, 6), 2, np.uint8), np.full((5, 6), 255, np.uint8))
    assert cm.matrix_full.sum() == 0
    res = cm.compute()
    assert np.isnan(res["iou"]).all() and np.isnan(res["miou"]) and np.isnan(res["aacc"])
    cm.update(torch.full((5, 6), 2), torch.full((5, 6), 255))
    assert cm.matrix_full.sum() == 0


def test_absent_class_is_nan_and_excluded_from_mean():
    gt = np.array([0, 0, 1, 1])
    pred = np.array([0, 1, 1, 1])
    res = ConfusionMatrix(3).update(pred, gt).compute()
    assert np.isnan(res["iou"][2]) and np.isnan(res["acc"][2])
    assert res["miou"] == pytest.approx((1 / 2 + 2 / 3) / 2, abs=1e-15)
    assert res["num_classes_in_mean"] == 2
    # predicted but absent from GT: IoU 0, counted in the mean; accuracy undefined
    res = ConfusionMatrix(3).update(np.array([0, 2]), np.array([0, 0])).compute()
    assert res["iou"][2] == 0.0 and np.isnan(res["acc"][2])
    assert res["miou"] == pytest.approx(0.25, abs=1e-15)


def test_any_prediction_outside_range_is_false_negative():
    gt = np.array([0, 0, 0, 0], dtype=np.int64)
    pred = np.array([0, -1, 3, 254], dtype=np.int64)
    for p, g in ((pred, gt), (torch.from_numpy(pred), torch.from_numpy(gt))):
        res = ConfusionMatrix(3).update(p, g).compute()
        assert res["pred_outside"][0] == 3 and res["iou"][0] == 0.25


def test_torch_equals_numpy_random():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 8, size=(3, 17, 23)).astype(np.uint8)
    gt[rng.random(gt.shape) < 0.2] = 255
    pred = rng.integers(0, 9, size=gt.shape).astype(np.uint8)  # 8 = outside for C = 8
    pred[rng.random(gt.shape) < 0.1] = 255
    a = ConfusionMatrix(8).update(pred, gt)
    b = ConfusionMatrix(8).update(torch.from_numpy(pred), torch.from_numpy(gt))
    np.testing.assert_array_equal(a.matrix_full, b.matrix_full)
    assert a.matrix.dtype == np.int64 and a.matrix.shape == (8, 8)
    ra, rb = a.compute(), b.compute()
    for k in ("iou", "acc"):
        np.testing.assert_array_equal(ra[k], rb[k])
    # naive reference over the valid pixels
    v = gt != 255
    g, p = gt[v].astype(int), pred[v].astype(int)
    inside = p < 8
    ref = np.zeros((8, 8), int)
    np.add.at(ref, (g[inside], p[inside]), 1)
    np.testing.assert_array_equal(a.matrix, ref)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_numpy():
    rng = np.random.default_rng(1)
    gt = rng.integers(0, 19, size=(2, 64, 64)).astype(np.uint8)
    gt[:, :5] = 255
    pred = rng.integers(0, 19, size=gt.shape).astype(np.uint8)
    pred[:, -3:] = 255
    a = ConfusionMatrix(19).update(pred, gt)
    b = ConfusionMatrix(19).update(torch.from_numpy(pred).cuda(), torch.from_numpy(gt).cuda())
    np.testing.assert_array_equal(a.matrix_full, b.matrix_full)


def test_merge_reset_and_accumulation():
    rng = np.random.default_rng(2)
    gt = rng.integers(0, 5, size=(4, 10, 10))
    pred = rng.integers(0, 5, size=(4, 10, 10))
    whole = ConfusionMatrix(5).update(pred, gt)
    a = ConfusionMatrix(5).update(pred[:2], gt[:2])
    b = ConfusionMatrix(5).update(torch.from_numpy(pred[2:]), torch.from_numpy(gt[2:]))
    np.testing.assert_array_equal(a.merge(b).matrix_full, whole.matrix_full)
    a.reset()
    assert a.matrix_full.sum() == 0
    with pytest.raises(ValueError):
        a.merge(ConfusionMatrix(6))


def test_all_reduce_is_noop_without_process_group():
    cm = ConfusionMatrix(3).update(np.array([0, 1]), np.array([0, 2]))
    before = cm.matrix_full
    cm.all_reduce()
    np.testing.assert_array_equal(cm.matrix_full, before)


def _ddp_worker(rank, world, init_file, out_dir):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        cm = ConfusionMatrix(3)
        cm.update(np.array([rank, 0]), np.array([0, 0]))            # numpy part
        cm.update(torch.tensor([255, 1]), torch.tensor([1, 2]))     # torch part
        cm.all_reduce()
        np.save(f"{out_dir}/rank{rank}.npy", cm.matrix_full)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_all_reduce_sums_over_ranks(tmp_path):
    import torch.multiprocessing as mp

    mp.start_processes(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2,
                       join=True, start_method="spawn")
    expected = np.zeros((3, 4), np.int64)
    for rank in range(2):
        m = ConfusionMatrix(3)
        m.update(np.array([rank, 0]), np.array([0, 0]))
        m.update(np.array([255, 1]), np.array([1, 2]))
        expected += m.matrix_full
    for rank in range(2):
        np.testing.assert_array_equal(np.load(tmp_path / f"rank{rank}.npy"), expected)


def test_errors():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="shapes differ"):
        cm.update(np.zeros((2, 3), int), np.zeros((3, 2), int))
    with pytest.raises(ValueError, match="shapes differ"):
        cm.update(torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="integer"):
        cm.update(np.zeros((2, 2)), np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="target"):
        cm.update(np.zeros(3, int), np.array([0, 7, 1]))
    with pytest.raises(ValueError, match="target"):
        cm.update(torch.zeros(3, dtype=torch.long), torch.tensor([0, -1, 1]))
    with pytest.raises(ValueError):
        ConfusionMatrix(19, ignore_index=3)
    assert cm.matrix_full.sum() == 0  # failed updates add nothing
