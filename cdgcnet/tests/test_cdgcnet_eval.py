"""`eval.py --pred-dir` on Cityscapes trees built from the cityscapesScripts reference vectors
(tests/fixtures/seg): the official numbers to 1e-12; missing, ambiguous and invalid predictions."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cdgcnet import eval as cd_eval
from cdgcnet import labels as L
from shared import config

FIX = Path(__file__).parent / "fixtures" / "seg"
CASES = ["case_small_3x64x128", "case_predignore_2x96x160"]
CITIES = ("bad-honnef", "new_york")
TOL = 1e-12


def _tree(root: Path, case: str, pred_layout: str):
    """GT as labelIds in a Cityscapes tree; predictions as labelIds (exact names, or nested with a
    prefix and suffix as cityscapesScripts allows) or as trainIds."""
    d = np.load(FIX / case / "maps.npz")
    pred_dir = root / "pred"
    for i, (gt, pred) in enumerate(zip(d["gt"], d["pred"])):
        city = CITIES[i % 2]
        stem = f"{city}_{i:06d}_{i + 19:06d}"
        for sub, name, arr in (("leftImg8bit", f"{stem}_leftImg8bit.png", np.zeros((*gt.shape, 3), np.uint8)),
                               ("gtFine", f"{stem}_gtFine_labelIds.png", L.TRAIN_TO_LABEL[gt])):
            (root / sub / "val" / city).mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(root / sub / "val" / city / name)
        if pred_layout == "exact":
            path, arr = pred_dir / f"{stem}_leftImg8bit.png", L.TRAIN_TO_LABEL[pred]
        elif pred_layout == "nested":
            path, arr = pred_dir / city / f"pred_{stem}_x.png", L.TRAIN_TO_LABEL[pred]
        else:
            path, arr = pred_dir / f"{stem}_leftImg8bit.png", pred
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr.astype(np.uint8)).save(path)
    return pred_dir


def _run(root, pred_dir, *extra):
    args = config.parse_args(cd_eval.get_args_parser(), ["--data-root", str(root), "--split", "val", "--pred-dir",
                                                         str(pred_dir), "--out", str(root / "r.json"),
                                                         "--device", "cpu", *extra])
    return cd_eval.main(args)[None]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("layout", ["exact", "nested", "trainIds"])
def test_pred_dir_matches_cityscapesscripts(tmp_path, case, layout):
    e = json.loads((FIX / case / "expected.json").read_text())
    pred_dir = _tree(tmp_path, case, layout)
    res = _run(tmp_path, pred_dir, *(["--pred-format", "trainIds"] if layout == "trainIds" else []))
    assert res == json.loads((tmp_path / "r.json").read_text())
    assert abs(res["miou"] - 100 * e["mIoU"]) <= 100 * TOL
    assert abs(res["aacc"] - 100 * e["aAcc"]) <= 100 * TOL
    for name, v in e["per_class_IoU"].items():
        assert (res["iou"][name] is None) if v is None else abs(res["iou"][name] - 100 * v) <= 100 * TOL
    assert abs(res["category_miou"] - 100 * e["category_mIoU_cityscapesScripts"]) <= 100 * TOL
    assert res["num_images"] == e["num_images"] and res["split"] == "val"


def test_missing_ambiguous_and_invalid_predictions_are_named(tmp_path):
    pred_dir = _tree(tmp_path, CASES[1], "exact")
    first = pred_dir / "bad-honnef_000000_000019_leftImg8bit.png"
    Image.fromarray(np.full((96, 160), 34, np.uint8)).save(first)
    with pytest.raises(ValueError, match=r"bad-honnef_000000_000019_leftImg8bit.png: values \[34\]"):
        _run(tmp_path, pred_dir)
    Image.fromarray(np.zeros((96, 160), np.uint8)).save(pred_dir / "copy_bad-honnef_000000_000019.png")
    with pytest.raises(ValueError, match="several predictions for bad-honnef_000000_000019"):
        _run(tmp_path, pred_dir)
    first.unlink()
    (pred_dir / "copy_bad-honnef_000000_000019.png").unlink()
    with pytest.raises(FileNotFoundError, match="no prediction for .*bad-honnef_000000_000019_gtFine_labelIds.png"):
        _run(tmp_path, pred_dir)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(first)
    with pytest.raises(ValueError, match="prediction size"):
        _run(tmp_path, pred_dir)
