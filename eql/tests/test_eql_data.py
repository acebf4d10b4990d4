"""LVIS data: repeat factors against hand-computed values, the DDP-aware sampler, frequencies and
r/c/f groups, the dataset on the toy files (v1 coco_url and v0.5 file_name paths), flips, masks,
the toy generator's determinism, and bad inputs."""
import json
import math

import numpy as np
import pytest
import torch

from eql.data import (
    LVISDataError,
    LVISDetection,
    TrainingSampler,
    evaluation_gt,
    frequency_group,
    load_lvis,
    repeat_factors,
    resolve_image_path,
)
from eql.toy import make_toy_dataset


def _lvis_file(tmp_path, cats_per_image, n_cats=3):
    images = [{"id": 10 + i, "width": 50, "height": 40, "neg_category_ids": [], "not_exhaustive_category_ids": [],
               "coco_url": f"http://x/train2017/{i:012d}.jpg"} for i in range(len(cats_per_image))]
    anns, aid = [], 1
    for im, cats in zip(images, cats_per_image):
        for c in cats:
            anns.append({"id": aid, "image_id": im["id"], "category_id": c, "bbox": [1, 2, 10, 8], "area": 80,
                         "segmentation": [[1, 2, 11, 2, 11, 10, 1, 10]]})
            aid += 1
    cats = [{"id": c, "name": f"c{c}", "frequency": "r", "image_count": 1} for c in range(1, n_cats + 1)]
    p = tmp_path / "lvis.json"
    p.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return p


def test_repeat_factors_hand_computed(tmp_path):
    # 10 images: cat 1 in all 10 (f = 1), cat 2 in 2 (f = 0.2), cat 3 in 1 (f = 0.1), threshold 0.5
    cats = [[1, 2, 3], [1, 2]] + [[1]] * 8
    lvis = load_lvis(_lvis_file(tmp_path, cats))
    ids = [10 + i for i in range(10)]
    r = repeat_factors(lvis, ids, 0.5)
    r3, r2 = math.sqrt(0.5 / 0.1), math.sqrt(0.5 / 0.2)        # 2.236..., 1.581...
    np.testing.assert_allclose(r, [r3, r2] + [1.0] * 8, rtol=0, atol=1e-12)   # image factor = max over its cats
    assert (repeat_factors(lvis, ids, 0.0) == 1).all()
    np.testing.assert_allclose(repeat_factors(lvis, ids, 0.001), np.ones(10))  # every class above t


def test_sampler_ranks_partition_the_stream_and_resume_skips_exactly():
    factors = [1.0, 2.5, 1.0, 1.2, 3.0]
    one = TrainingSampler(factors, seed=3)
    stream = [next(it) for it in [iter(one)] for _ in range(60)]
    assert [p for p, _ in stream] == list(range(60))
    ranks = [TrainingSampler(factors, seed=3, rank=k, world_size=2) for k in range(2)]
    parts = [[x for _, x in zip(range(30), iter(s))] for s in ranks]
    assert sorted(p for part in parts for p, _ in part) == list(range(60))
    merged = dict(p for part in parts for p in part)
    assert [merged[p] for p in range(60)] == [i for _, i in stream]
    resumed = TrainingSampler(factors, seed=3, rank=1, world_size=2, start=7)
    assert [x for _, x in zip(range(10), iter(resumed))] == parts[1][7:17]
    counts = np.bincount([i for _, i in [x for _, x in zip(range(12000), iter(one))]], minlength=5)
    np.testing.assert_allclose(counts / counts.sum(), np.array(factors) / sum(factors), atol=0.01)


def test_frequency_groups_and_freq_info(tmp_path):
    assert [frequency_group(n) for n in (1, 10, 11, 100, 101)] == ["r", "r", "c", "c", "f"]
    lvis = load_lvis(_lvis_file(tmp_path, [[1], [1, 2], []]))
    assert lvis.num_annotated_images == 2
    np.testing.assert_allclose(lvis.freq_info(), [0.5, 0.5, 0.5])   # image_count 1 / 2 annotated images


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("eqltoy")
    make_toy_dataset(root, seed=1, train_images=24, val_images=8, quiet=True)
    return root


def test_toy_files_are_lvis_and_generation_is_idempotent(toy, tmp_path):
    train = json.loads((toy / "lvis" / "lvis_v1_train.json").read_text())
    assert len(train["categories"]) == 24 and all(c["frequency"] in "rcf" for c in train["categories"])
    im = train["images"][0]
    assert {"coco_url", "neg_category_ids", "not_exhaustive_category_ids", "height", "width"} <= set(im)
    a = train["annotations"][0]
    assert isinstance(a["segmentation"][0], list) and 0 < a["area"] <= a["bbox"][2] * a["bbox"][3] + 1
    mtime = (toy / "manifest.json").stat().st_mtime_ns
    make_toy_dataset(toy, seed=1, train_images=24, val_images=8, quiet=True)
    assert (toy / "manifest.json").stat().st_mtime_ns == mtime
    other = make_toy_dataset(tmp_path / "again", seed=1, train_images=24, val_images=8, quiet=True)
    assert (other / "lvis" / "lvis_v1_train.json").read_text() == (toy / "lvis" / "lvis_v1_train.json").read_text()


def test_dataset_targets_masks_flip_and_image_labels(toy):
    lvis = load_lvis(toy / "lvis" / "lvis_v1_train.json")
    ds = LVISDetection(lvis, toy / "coco", train=True, with_masks=True, hflip_prob=0.5, seed=0)
    image, t = ds[0]
    assert image.shape[0] == 3 and image.dtype == torch.float32 and 0 <= image.min() and image.max() <= 1
    n = len(t["boxes"])
    assert n > 0 and t["labels"].min() >= 1 and t["labels"].max() <= 24 and t["masks"].shape[0] == n
    x0, y0, x1, y1 = t["boxes"][0].round().int().tolist()
    assert t["masks"][0].sum() > 0.3 * (x1 - x0) * (y1 - y0)          # the polygon fills its box
    info = ds.record(0)
    present = {a["category_id"] for a in lvis.anns_by_image[info["id"]]}
    assert t["image_labels"].sum() == len(present) + len(info["neg"])   # verified present / absent
    # the flip is a function of the stream position: same position, same augmentation
    flips = [ds[(p, 0)][1]["boxes"][0, 0].item() for p in range(12)]
    assert len(set(round(f, 3) for f in flips)) == 2
    assert ds[(5, 0)][1]["boxes"].tolist() == ds[(5, 0)][1]["boxes"].tolist()
    w = image.shape[-1]
    pos_flipped = next(p for p in range(12) if abs(flips[p] - t["boxes"][0, 0].item()) > 1e-3)
    img_f, t_f = ds[(pos_flipped, 0)]
    torch.testing.assert_close(img_f, image.flip(-1))
    torch.testing.assert_close(t_f["boxes"][:, [0, 2]], w - t["boxes"][:, [2, 0]])


def test_dataset_keeps_no_per_image_objects_and_validation_decodes_no_masks(toy):
    lvis = load_lvis(toy / "lvis" / "lvis_v1_val.json", keep_raw=True)
    val = LVISDetection(lvis, toy / "coco", train=False, with_masks=False, filter_empty=False)
    # only arrays and per-category tables: no annotation dicts, no per-image lists (forked per worker)
    for name, value in vars(val).items():
        assert not isinstance(value, (list, tuple)) or len(value) == lvis.num_classes, name
        assert not isinstance(value, dict) or len(value) == lvis.num_classes, name
        assert value is not lvis and value is not lvis.images, name
    assert all(a["segmentation"] is None for i in range(len(val)) for a in val.record(i)["anns"])
    image, target = val[0]
    assert "masks" not in target and len(target["boxes"]) > 0
    gt = evaluation_gt(lvis, val.image_ids()[:3], with_segm=False)
    assert [im["id"] for im in gt["images"]] == val.image_ids()[:3]
    assert {a["image_id"] for a in gt["annotations"]} <= set(val.image_ids()[:3])
    assert all("segmentation" not in a for a in gt["annotations"]) and gt["categories"][0]["frequency"] in "rcf"
    assert "segmentation" in evaluation_gt(lvis, val.image_ids(), with_segm=True)["annotations"][0]


def test_image_paths_v1_and_v05(tmp_path):
    (tmp_path / "val2017").mkdir()
    (tmp_path / "val2017" / "000000397133.jpg").write_bytes(b"")
    assert resolve_image_path({"coco_url": "http://images.cocodataset.org/train2017/000000000009.jpg"}, tmp_path) \
        == tmp_path / "train2017" / "000000000009.jpg"
    assert resolve_image_path({"file_name": "COCO_val2014_000000397133.jpg"}, tmp_path) \
        == tmp_path / "val2017" / "000000397133.jpg"
    assert resolve_image_path({"file_name": "000000397133.jpg"}, tmp_path) == tmp_path / "val2017" / "000000397133.jpg"


def test_bad_inputs_name_the_file_and_the_problem(tmp_path, toy):
    with pytest.raises(LVISDataError, match="not found"):
        load_lvis(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(LVISDataError, match="bad.json: not valid JSON"):
        load_lvis(bad)
    p = _lvis_file(tmp_path, [[1]])
    d = json.loads(p.read_text())
    d["annotations"][0]["category_id"] = 99
    p.write_text(json.dumps(d))
    with pytest.raises(LVISDataError, match="unknown category 99"):
        load_lvis(p)
    d["annotations"][0]["category_id"] = 1
    d["annotations"][0]["bbox"] = [1, 2, 3]
    p.write_text(json.dumps(d))
    with pytest.raises(LVISDataError, match="malformed bbox"):
        load_lvis(p)
    lvis = load_lvis(toy / "lvis" / "lvis_v1_val.json")
    with pytest.raises(LVISDataError, match=r"8 of 8 images .* are missing"):
        LVISDetection(lvis, tmp_path, train=False)
