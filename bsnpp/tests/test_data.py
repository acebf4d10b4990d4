"""bsnpp.data and bsnpp.toy: readers, BSN rescaling, BMN labels, scanning, windows, toy data."""

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from bsnpp.data import ProposalDataset, open_feature_store, scan_features
from bsnpp.labels import (
    boundary_targets,
    iou_map_targets,
    make_targets,
    proposal_map_bounds,
    rescale_snippets,
    valid_map_mask,
)
from bsnpp.records import VideoRecord, load_records
from bsnpp.toy import make_toy_dataset
from shared.formats import CsvFeatureFolder, FormatError, Hdf5FeatureFile

# ------------------------------------------------------------------------------------ helpers


def _csv(path: Path, x: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(f"f{i}" for i in range(x.shape[1]))]
    lines += [",".join(repr(float(v)) for v in row) for row in x]
    path.write_text("\n".join(lines) + "\n")
    return path


def _record(vid, segments, duration=100.0, feature_seconds=None, subset="training"):
    return VideoRecord(video_id=vid, subset=subset, duration=duration,
                       segments=tuple((s, e, "a") for s, e in segments), feature_key=vid,
                       feature_seconds=feature_seconds or duration)


# ------------------------------------------------------------------------------------ records

GT = {"version": "VERSION 1.3", "database": {
    "aaa": {"duration": 100.0, "subset": "training",
            "annotations": [{"segment": [22.0, 50.0], "label": "Surfing"}]},
    "bbb": {"duration": 60.0, "subset": "validation",
            "annotations": [{"segment": [0.01, 30.0], "label": "Ballet"},
                            {"segment": [40.0, 70.0], "label": "Ballet"}]},
    "ccc": {"duration": 30.0, "subset": "testing", "annotations": []},
}}
VIDEO_INFO = ("video,numFrame,seconds,fps,rfps,subset,featureFrame\n"
              "v_aaa,3000,100.0,30.0,30.0,training,2992\n"
              "v_bbb,1500,60.0,25.0,25.0,validation,1488\n"
              "v_zzz,100,4.0,25.0,25.0,training,96\n")
ANNO = {"v_aaa": {"duration_second": 100.0, "duration_frame": 3000, "feature_frame": 2992,
                  "annotations": [{"segment": [22.0, 50.0], "label": "Surfing"}]},
        "v_bbb": {"duration_second": 60.0, "duration_frame": 1500, "feature_frame": 1488,
                  "annotations": [{"segment": [0.01, 30.0], "label": "Ballet"},
                                  {"segment": [40.0, 70.0], "label": "Ballet"}]}}
THUMOS = ("video-name,t-init,t-end,f-init,f-end,video-duration,frame-rate,video-frames,label-idx\n"
          "video_validation_0000001,10.0,20.0,300,600,150.0,30.0,4500,7\n"
          "video_validation_0000001,30.0,31.0,900,930,150.0,30.0,4500,-1\n"
          "video_validation_0000001,140.0,149.0,4200,4470,150.0,30.0,4500,7\n"
          "video_test_0000002,1.0,5.0,30,150,20.0,30.0,600,3\n")


@pytest.fixture
def ann(tmp_path):
    (tmp_path / "gt.json").write_text(json.dumps(GT))
    (tmp_path / "video_info_new.csv").write_text(VIDEO_INFO)
    (tmp_path / "anet_anno_action.json").write_text(json.dumps(ANNO))
    (tmp_path / "thumos_val.csv").write_text(THUMOS)
    return tmp_path


def test_load_records_activitynet(ann):
    recs = load_records(ann / "gt.json")
    assert [r.video_id for r in recs] == ["aaa", "bbb", "ccc"]
    assert recs[1].segments == ((0.01, 30.0, "Ballet"), (40.0, 70.0, "Ballet"))
    assert recs[0].feature_seconds == recs[0].duration == 100.0 and recs[0].feature_key == "aaa"
    assert [r.video_id for r in load_records(ann / "gt.json", subset="train")] == ["aaa"]
    assert [r.video_id for r in load_records(ann / "gt.json", subset=["val", "testing"])] == \
        ["bbb", "ccc"]


def test_load_records_bsn_files(ann):
    recs = load_records(ann / "video_info_new.csv", ann / "anet_anno_action.json",
                        subset="validation")
    assert [r.video_id for r in recs] == ["bbb"]  # v_ stripped; v_zzz has no annotation
    r = recs[0]
    assert r.subset == "validation" and r.duration == 60.0 and r.fps == 25.0
    assert r.feature_seconds == pytest.approx(1488 / 1500 * 60.0)  # BMN's corrected_second
    assert r.feature_key == "bbb"
    # the ground truth plus the video info: annotations from the GT, frame counts from the CSV
    merged = load_records(ann / "gt.json", ann / "video_info_new.csv")
    assert merged[0].feature_seconds == pytest.approx(2992 / 3000 * 100.0)
    assert merged[2].feature_seconds == 30.0  # ccc not in the CSV: the duration
    with pytest.raises(ValueError, match="gives subsets"):
        load_records(ann / "anet_anno_action.json", subset="training")
    with pytest.raises(ValueError, match="holds no annotations"):
        load_records(ann / "video_info_new.csv")


def test_load_records_thumos(ann):
    recs = load_records(ann / "thumos_val.csv")
    assert [(r.video_id, r.subset) for r in recs] == [("video_validation_0000001", "validation"),
                                                      ("video_test_0000002", "testing")]
    assert recs[0].segments == ((10.0, 20.0, 7), (140.0, 149.0, 7))  # ambiguous dropped
    assert len(load_records(ann / "thumos_val.csv", keep_ambiguous=True)[0].segments) == 3
    assert [r.video_id for r in load_records(ann / "thumos_val.csv", subset="test")] == \
        ["video_test_0000002"]


def test_load_records_malformed_names_file(tmp_path):
    bad = json.loads(json.dumps(GT))
    bad["database"]["bbb"]["annotations"][1]["segment"] = [70.0, 40.0]
    p = tmp_path / "my_gt.json"
    p.write_text(json.dumps(bad))
    with pytest.raises(FormatError, match=r"my_gt.json: video 'bbb' annotation 1: segment end"):
        load_records(p)
    q = tmp_path / "other.csv"
    q.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(FormatError, match="other.csv: unknown annotation CSV"):
        load_records(q)


# ------------------------------------------------------------------------------------ rescaling


def _bsn_pool_literal(data, T, n=3, st=0.5):
    """BSN's data_process.py::poolData written out (seconds; scipy interp1d), num_bin = 1."""
    from scipy.interpolate import interp1d

    L = len(data)
    if L == 1:
        return np.stack([data[0]] * T)
    corrected_second = L * st
    x = [st / 2 + ii * st for ii in range(L)]
    f = interp1d(x, data, axis=0)
    out = []
    for idx in range(T):
        xmin = max(x[0] + 0.0001, 1.0 / T * idx * corrected_second)
        xmax = min(x[-1] - 0.0001, 1.0 / T * (idx + 1) * corrected_second)
        if xmax < x[0] or xmin > x[-1]:
            out.append(np.zeros(data.shape[1]))
            continue
        plen = (xmax - xmin) / (n - 1)
        out.append(np.mean(f([xmin + plen * ii for ii in range(n)]), axis=0))
    return np.stack(out)


@pytest.mark.parametrize("L, T, n", [(48, 100, 3), (200, 100, 3), (100, 100, 3), (37, 16, 5),
                                     (2, 7, 3), (1, 5, 3)])
def test_rescale_equals_bsn_literal_loop(L, T, n):
    rng = np.random.default_rng(L * 1000 + T)
    x = rng.standard_normal((L, 6))
    st = 0.5  # BSN's eps is 1e-4 s = 2e-4 snippets here
    got = rescale_snippets(x, T, n, eps=1e-4 / st)
    ref = _bsn_pool_literal(x, T, n, st)
    assert got.dtype == np.float32 and got.shape == (T, 6)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_rescale_same_length_is_a_light_smoothing_not_identity():
    x = np.random.default_rng(0).standard_normal((100, 3))
    y = rescale_snippets(x, 100)
    np.testing.assert_allclose(y[50], x[49] / 6 + 2 * x[50] / 3 + x[51] / 6, atol=1e-4)
    np.testing.assert_allclose(y[0], 0.75 * x[0] + 0.25 * x[1], atol=1e-4)
    # upsampling: BSN zeroes the bins outside the snippet centres; "clamp" holds the edge values
    z = rescale_snippets(x[:48], 100)
    assert np.all(z[0] == 0) and np.all(z[-1] == 0) and np.all(z[1:-1] != 0)
    c = rescale_snippets(x[:48], 100, edge="clamp")
    np.testing.assert_allclose(c[0], x[0], atol=1e-6)
    const = rescale_snippets(np.ones((37, 2)), 100, edge="clamp")
    np.testing.assert_allclose(const, 1.0, atol=1e-6)


# ------------------------------------------------------------------------------------ labels


def test_labels_hand_worked_case():
    """T = 10, one GT segment [0.22, 0.5]; BMN anchors [(k-0.5)/T, (k+1.5)/T], regions 3/T."""
    gt = np.array([[0.22, 0.5]])
    t = make_targets(gt, 10)
    # start region [0.07, 0.37]: IoA with anchors of length 0.2
    np.testing.assert_allclose(t["start"], [0.4, 0.9, 1.0, 0.6, 0.1, 0, 0, 0, 0, 0], atol=1e-6)
    # end region [0.35, 0.65]
    np.testing.assert_allclose(t["end"], [0, 0, 0, 0.5, 1.0, 1.0, 0.5, 0, 0, 0], atol=1e-6)
    m = t["iou_map"]
    assert m.shape == (10, 10) and m.dtype == np.float32
    assert m[2, 2] == pytest.approx(0.28 / 0.30)   # [0.2, 0.5]
    assert m[9, 0] == pytest.approx(0.28)          # [0, 1], the whole video
    assert m[0, 3] == pytest.approx(0.1 / 0.28)    # [0.3, 0.4]
    assert m[4, 5] == 0.0                          # [0.5, 1.0] only touches
    assert m[7, 2] == pytest.approx(0.28 / 0.8)    # [0.2, 1.0] ends at the video end: valid
    assert m[9, 1] == 0.0                          # [0.1, 1.1]: invalid cell
    # BSN's region width max(1/T, 0.1 * len) = 0.1: start region [0.17, 0.27]
    s, e = boundary_targets(gt, 10, boundary_width="bsn")
    np.testing.assert_allclose(s, [0, 0.4, 0.5, 0.1, 0, 0, 0, 0, 0, 0], atol=1e-6)
    # "aligned" anchors: start anchor k centred on k/T, end anchor on (k+1)/T
    s, e = boundary_targets(gt, 10, anchors="aligned")
    np.testing.assert_allclose(s, [0, 0.8, 1, 1, 0.2, 0, 0, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(e, [0, 0, 0, 1, 1, 1, 0, 0, 0, 0], atol=1e-6)
    # no segment: all zeros
    z = make_targets(np.zeros((0, 2)), 10, 4)
    assert z["iou_map"].shape == (4, 10) and not z["iou_map"].any() and not z["start"].any()


def _bmn_labels_literal(gt, T):
    """JJBOY's BMN dataset.py::_get_train_label (match_map, anchors from range(1, T + 1))."""
    gap = 1.0 / T
    anchor_xmin = [gap * (i - 0.5) for i in range(T)]
    anchor_xmax = [gap * (i + 0.5) for i in range(1, T + 1)]

    def ioa(amin, amax, bmin, bmax):
        inter = np.maximum(np.minimum(amax, bmax) - np.maximum(amin, bmin), 0.0)
        return inter / (amax - amin)

    def iou(amin, amax, bmin, bmax):
        inter = np.maximum(np.minimum(amax, bmax) - np.maximum(amin, bmin), 0.0)
        return inter / (amax - amin - inter + bmax - bmin)

    iou_map = np.zeros((T, T))
    for d in range(T):
        for s in range(T):
            if s + d + 1 <= T:
                iou_map[d, s] = max(iou(s * gap, (s + d + 1) * gap, g0, g1) for g0, g1 in gt)
    w = 3 * gap
    start = [max(ioa(anchor_xmin[k], anchor_xmax[k], g0 - w / 2, g0 + w / 2) for g0, _ in gt)
             for k in range(T)]
    end = [max(ioa(anchor_xmin[k], anchor_xmax[k], g1 - w / 2, g1 + w / 2) for _, g1 in gt)
           for k in range(T)]
    return np.array(start), np.array(end), iou_map


def test_labels_match_bmn_literal_loop_and_are_flip_symmetric():
    rng = np.random.default_rng(1)
    T = 16
    for _ in range(5):
        g = np.sort(rng.uniform(0, 1, size=(3, 2)), axis=1)
        g[0] = [0.0, 1.0] if _ == 0 else g[0]
        t = make_targets(g, T)
        s, e, m = _bmn_labels_literal(g, T)
        np.testing.assert_allclose(t["start"], s, atol=1e-6)
        np.testing.assert_allclose(t["end"], e, atol=1e-6)
        np.testing.assert_allclose(t["iou_map"], m, atol=1e-6)
        # time reversal: start of the reversed video == flipped end (BSN++'s backward pass)
        r = make_targets(1.0 - g[:, ::-1], T)
        np.testing.assert_allclose(r["start"], t["end"][::-1], atol=1e-6)
        np.testing.assert_allclose(r["end"], t["start"][::-1], atol=1e-6)


def test_valid_map_mask_and_bounds():
    v = valid_map_mask(3, 5)
    assert v.dtype == bool and v.shape == (3, 5)
    assert v.tolist() == [[True] * 5, [True] * 4 + [False], [True] * 3 + [False] * 2]
    assert valid_map_mask(100, 100).sum() == 5050
    ps, pe = proposal_map_bounds(3, 5)
    assert ps[2, 1] == pytest.approx(0.2) and pe[2, 1] == pytest.approx(0.8)
    m = iou_map_targets(np.array([[0.0, 1.0]]), 5, 3)
    assert (m[~v] == 0).all() and (m[v] > 0).all()


def test_dataset_item_hand_worked(tmp_path):
    """One video, GT [22 s, 50 s] of 100 s; L = 10 snippets, T = 10 (used as is)."""
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    _csv(tmp_path / "f" / "v_aaa.csv", x)
    store = CsvFeatureFolder(tmp_path / "f")
    recs, _ = scan_features([_record("aaa", [(22.0, 50.0)])], store)
    ds = ProposalDataset(recs, store, temporal_scale=10, max_duration=6)
    it = ds[0]
    assert torch.equal(it["features"], torch.from_numpy(x.T.copy()))  # [C, T], not rescaled
    assert it["iou_map"].shape == (6, 10) and it["iou_map"][2, 2].item() == pytest.approx(0.28 / 0.3)
    np.testing.assert_allclose(it["start"].numpy(), [0.4, 0.9, 1.0, 0.6, 0.1, 0, 0, 0, 0, 0],
                               atol=1e-6)
    assert it["segments"].tolist()[0] == pytest.approx([0.22, 0.5]) and it["num_segments"] == 1
    assert it["offset_seconds"] == 0.0 and it["window_seconds"] == 100.0
    np.testing.assert_allclose(ds.to_video_time(0, [[0.22, 0.5], [0.5, 1.2]]), [[22, 50], [50, 100]])
    # a different length is rescaled; with rescale="always" even L == T
    ds2 = ProposalDataset(recs, store, temporal_scale=16)
    assert ds2[0]["features"].shape == (2, 16)
    ds3 = ProposalDataset(recs, store, temporal_scale=10, rescale="always")
    np.testing.assert_allclose(ds3[0]["features"].numpy(), rescale_snippets(x, 10).T)


# ------------------------------------------------------------------------------------ scanning


def test_scan_skips_and_reports_missing_and_malformed(tmp_path, caplog):
    d = tmp_path / "feats"
    rng = np.random.default_rng(0)
    _csv(d / "v_good1.csv", rng.standard_normal((5, 3)))
    _csv(d / "v_good2.csv", rng.standard_normal((7, 3)))
    _csv(d / "v_nan.csv", np.array([[1.0, np.nan, 2.0]]))
    _csv(d / "v_wide.csv", rng.standard_normal((4, 4)))
    (d / "v_text.csv").write_text("f0,f1,f2\n1,2,x\n")
    (d / "v_empty.csv").write_text("")
    (d / "v_short.csv").write_text("f0,f1,f2\n1,2,3\n4,5\n")
    names = ["good1", "missing1", "nan", "wide", "text", "good2", "empty", "short", "missing2"]
    recs = [_record(n, [(1.0, 2.0)]) for n in names]
    store = CsvFeatureFolder(d)
    with caplog.at_level(logging.WARNING, logger="bsnpp.data"):
        usable, rep = scan_features(recs, store)
    assert [r.video_id for r in usable] == ["good1", "good2"]
    assert [(r.num_snippets, r.num_channels) for r in usable] == [(5, 3), (7, 3)]
    assert rep.total == 9 and rep.usable == 2 and rep.channels == 3 and not rep.ok
    assert rep.missing == ["missing1", "missing2"]
    bad = dict(rep.malformed)
    assert set(bad) == {"nan", "wide", "text", "empty", "short"}
    assert "non-finite" in bad["nan"] and "4 channels, expected 3" in bad["wide"]
    assert "v_text.csv" in bad["text"] and "v_empty.csv: empty file" in bad["empty"]
    s = str(rep)
    assert "2/9 videos usable" in s and "2 missing (skipped), first: missing1, missing2" in s
    assert "5 malformed" in s and "missing1" in caplog.text
    assert rep.min_snippets == 5 and rep.max_snippets == 7
    # the dataset is built from the usable records only and never touches the bad files
    ds = ProposalDataset(usable, store, temporal_scale=8)
    assert len(ds) == 2 and [ds[i]["features"].shape for i in range(2)] == [(3, 8)] * 2
    # expected_channels, and nothing usable -> a clear error before training
    usable4, rep4 = scan_features(recs, store, expected_channels=4)
    assert [r.video_id for r in usable4] == ["wide"]
    with pytest.raises(ValueError, match="no usable feature files"):
        scan_features([_record("missing1", [])], store)


def test_hdf5_store_in_dataset_and_workers(tmp_path):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(3)
    feats = {f"v{i}": rng.standard_normal((20 + 5 * i, 6)).astype(np.float32) for i in range(4)}
    with h5py.File(tmp_path / "f.h5", "w") as f:
        for k, v in feats.items():
            f["v_" + k] = v
    for k, v in feats.items():
        _csv(tmp_path / "csv" / f"v_{k}.csv", v)
    recs = [_record(k, [(10.0, 40.0)]) for k in feats]
    h5 = open_feature_store(tmp_path / "f.h5")
    csv = open_feature_store(tmp_path / "csv")
    assert isinstance(h5, Hdf5FeatureFile) and isinstance(csv, CsvFeatureFolder)
    ra, _ = scan_features(recs, h5)
    rb, _ = scan_features(recs, csv)
    assert ra == rb
    da = ProposalDataset(ra, h5, temporal_scale=16, cache_bytes=0)
    db = ProposalDataset(rb, csv, temporal_scale=16)
    for i in range(4):
        np.testing.assert_allclose(da[i]["features"], db[i]["features"], rtol=1e-6, atol=1e-6)
    loader = torch.utils.data.DataLoader(da, batch_size=2, num_workers=2)
    batches = list(loader)
    assert len(batches) == 2
    b = batches[0]
    assert b["features"].shape == (2, 6, 16) and b["iou_map"].shape == (2, 16, 16)
    assert b["start"].shape == (2, 16) and b["segments"].shape == (2, 1, 2)
    assert b["video_index"].tolist() == [0, 1]
    np.testing.assert_allclose(b["features"][1], db[1]["features"], rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------------ THUMOS


def test_thumos_windows_map_back_to_video_time(ann, tmp_path):
    h5py = pytest.importorskip("h5py")
    recs = load_records(ann / "thumos_val.csv")  # 150 s video with GT [10, 20], [140, 149]
    rng = np.random.default_rng(0)
    raw = {"video_validation_0000001": rng.standard_normal((300, 4)).astype(np.float32),
           "video_test_0000002": rng.standard_normal((50, 4)).astype(np.float32)}
    with h5py.File(tmp_path / "th.h5", "w") as f:
        for k, v in raw.items():
            f[k] = v.T  # stored [C, L]
    store = Hdf5FeatureFile(tmp_path / "th.h5", layout="CL")
    usable, _ = scan_features(recs, store)
    # 0.5 s per snippet; windows of 128 snippets (64 s), stride 64: offsets 0, 64, 128, 172
    inf = ProposalDataset(usable, store, window=128, stride=64, mode="infer", with_labels=True)
    infos = [inf.item_info(i) for i in range(len(inf))]
    assert [(i["video_id"][:10], i["offset_snippets"]) for i in infos] == \
        [("video_vali", 0), ("video_vali", 64), ("video_vali", 128), ("video_vali", 172),
         ("video_test", 0)]
    assert [i["offset_seconds"] for i in infos[:4]] == [0.0, 32.0, 64.0, 86.0]
    assert all(i["window_seconds"] == 64.0 for i in infos[:4])
    last = inf[3]
    np.testing.assert_array_equal(last["features"].numpy(), raw["video_validation_0000001"][172:].T)
    seg = last["segments"][:last["num_segments"]].numpy()
    np.testing.assert_allclose(seg, [[(140 - 86) / 64, (149 - 86) / 64]], atol=1e-6)
    np.testing.assert_allclose(inf.to_video_time(3, seg), [[140.0, 149.0]], atol=1e-4)
    # the start target peaks at the GT start in window coordinates: (140 - 86) / 64 * 128 = 108
    assert int(np.argmax(last["start"].numpy())) in (107, 108)
    # window 1 ([32 s, 96 s]) holds no segment: all-zero targets
    assert inf[1]["num_segments"] == 0 and not inf[1]["iou_map"].any()
    # a video shorter than the window: one window, zero-padded
    short = inf[4]
    assert short["features"].shape == (4, 128) and not short["features"][:, 50:].any()
    assert short["window_seconds"] == pytest.approx(128 * 20.0 / 50)
    # training keeps only windows holding a whole GT segment (offsets 0 and 172, and the test
    # video's window 0 with its [1, 5] s segment)
    tr = ProposalDataset(usable, store, window=128, stride=64, mode="train")
    assert [(tr.item_info(i)["video_index"], tr.item_info(i)["offset_snippets"])
            for i in range(len(tr))] == [(0, 0), (0, 172), (1, 0)]
    assert tr.stats["videos_without_training_window"] == 0


# ------------------------------------------------------------------------------------ toy data


def _tree_digest(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_dataset(tmp_path_factory.mktemp("toy") / "bsnpp", seed=0)


def test_toy_deterministic_and_idempotent(toy, tmp_path):
    again = make_toy_dataset(tmp_path / "again", seed=0)
    assert _tree_digest(again) == _tree_digest(toy)  # same seed -> identical bytes
    other = make_toy_dataset(tmp_path / "other", seed=1, videos=40)
    assert (other / "activity_net.v1-3.min.json").read_bytes() != \
        (toy / "activity_net.v1-3.min.json").read_bytes()
    mtime = (again / "activity_net.v1-3.min.json").stat().st_mtime_ns
    make_toy_dataset(tmp_path / "again", seed=0)  # same settings: skipped
    assert (again / "activity_net.v1-3.min.json").stat().st_mtime_ns == mtime
    make_toy_dataset(tmp_path / "again", seed=0, videos=40)  # new settings: rewritten
    assert len(list((again / "csv_features").glob("v_*.csv"))) == 40


def test_toy_loads_through_real_loaders(toy):
    from bsnpp import toy as toy_mod

    assert toy_mod.DEFAULT_OUT == Path(toy_mod.__file__).resolve().parents[1] / "data/toy/bsnpp"
    gt = load_records(toy / "activity_net.v1-3.min.json")
    bsn = load_records(toy / "video_info_new.csv", toy / "anet_anno_action.json")
    assert len(gt) == len(bsn) == 400
    assert [r.video_id for r in gt] == [r.video_id for r in bsn]
    assert [r.segments for r in gt] == [r.segments for r in bsn]
    assert sum(r.subset == "training" for r in gt) == 300
    assert sum(r.subset == "validation" for r in gt) == 100
    assert all(r.feature_seconds <= r.duration for r in bsn)
    assert all(30 <= r.duration <= 240 for r in gt)
    assert {len(r.segments) for r in gt} == {1, 2, 3, 4}
    frac = np.array([(e - s) / r.duration for r in gt for s, e, _ in r.segments])
    assert frac.min() < 0.03 and frac.max() > 0.6 and 0.05 < np.median(frac) < 0.3
    for r in gt:  # non-overlapping, inside the video
        segs = sorted((s, e) for s, e, _ in r.segments)
        assert all(0 <= s < e <= r.duration for s, e in segs)
        assert all(a[1] < b[0] for a, b in zip(segs, segs[1:]))
    assert len({lab for r in gt for *_, lab in r.segments}) == 5

    store = CsvFeatureFolder(toy / "csv_features")
    train = load_records(toy / "video_info_new.csv", toy / "anet_anno_action.json", subset="train")
    usable, rep = scan_features(train, store)
    assert rep.ok and rep.usable == 300 and rep.channels == 32
    assert 48 <= rep.min_snippets < 100 < rep.max_snippets <= 200  # the rescaling path runs
    ds = ProposalDataset(usable, store, temporal_scale=100)
    assert ds.preload() == 300
    it = ds[0]
    assert it["features"].shape == (32, 100) and torch.isfinite(it["features"]).all()
    starts = torch.stack([ds[i]["start"] for i in range(len(ds))])
    assert (starts.max(1).values > 0.99).float().mean() > 0.9  # every video has a start peak
    iou = torch.stack([ds[i]["iou_map"] for i in range(len(ds))])
    best = iou.flatten(1).max(1).values  # the map holds a good match of every video's GT
    assert (best > 0.5).all() and (best > 0.9).float().mean() > 0.9

    # the features carry the actions: in-action bins differ from background bins
    x = torch.stack([ds[i]["features"] for i in range(len(ds))]).numpy()  # [N, C, T]
    inside = np.zeros((len(ds), 100), dtype=bool)
    t = (np.arange(100) + 0.5) / 100
    for i in range(len(ds)):
        for s, e in ds[i]["segments"][:ds[i]["num_segments"]].numpy():
            inside[i] |= (t >= s) & (t < e)
    sig, noise = [], []
    for i in range(len(ds)):
        if 3 <= inside[i].sum() <= 97:
            d = np.abs(x[i][:, inside[i]].mean(1) - x[i][:, ~inside[i]].mean(1))
            sig.append(d[:20].max())     # class-signature channels (4 per class)
            noise.append(d[24:].max())   # pure-noise channels
    assert np.mean(sig) > 2.0 * np.mean(noise)  # ~2.8 on seed 0
