"""shared.formats.activitynet: every reader on small hand-written files, and its error messages."""

import gzip
import json

import numpy as np
import pytest

from shared.formats import (
    CsvFeatureFolder,
    FormatError,
    Hdf5FeatureFile,
    MissingFeatureError,
    normalize_video_id,
    read_anno_action_json,
    read_classification_json,
    read_feature_csv,
    read_ground_truth,
    read_proposal_json,
    read_thumos_csv,
    read_video_info_csv,
    write_proposal_json,
)

GT = {
    "version": "VERSION 1.3",
    "taxonomy": [],
    "database": {
        "abc": {"duration": 100.0, "subset": "training", "url": "u", "resolution": "r",
                "annotations": [{"segment": [10.0, 20.5], "label": "Surfing"},
                                {"segment": [30, 40], "label": "Ballet"}]},
        "v_def": {"duration": 50, "subset": "validation",
                  "annotations": [{"segment": [0.01, 49.9], "label": "Surfing"}]},
        "ghi": {"duration": 80.5, "subset": "testing", "annotations": []},
        "jkl": {"duration": 10.0, "subset": "testing"},
    },
}


def _write(path, text):
    path.write_text(text)
    return path


def test_normalize_video_id():
    assert normalize_video_id("v_QOlSCBRmfWY") == "QOlSCBRmfWY"
    assert normalize_video_id("QOlSCBRmfWY") == "QOlSCBRmfWY"
    assert normalize_video_id("v_v_x") == "v_x"  # one prefix only


def test_read_ground_truth(tmp_path):
    p = tmp_path / "gt.json"
    p.write_text(json.dumps(GT))
    videos, classes = read_ground_truth(p)
    assert list(videos) == ["abc", "v_def", "ghi", "jkl"]  # ids as given, file order
    assert videos["abc"] == {"duration": 100.0, "subset": "training",
                             "annotations": [(10.0, 20.5, "Surfing"), (30.0, 40.0, "Ballet")]}
    assert videos["ghi"]["annotations"] == [] and videos["jkl"]["annotations"] == []
    assert classes == ["Ballet", "Surfing"]
    # a dict and a gzipped file give the same
    assert read_ground_truth(GT) == (videos, classes)
    gz = tmp_path / "gt.json.gz"
    with gzip.open(gz, "wt") as f:
        json.dump(GT, f)
    assert read_ground_truth(gz) == (videos, classes)


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d.pop("database"), "'database'"),
    (lambda d: d["database"]["abc"].pop("duration"), "video 'abc': missing key 'duration'"),
    (lambda d: d["database"]["abc"].update(duration="100"), "video 'abc' 'duration'"),
    (lambda d: d["database"]["abc"].update(duration=-1), "non-negative"),
    (lambda d: d["database"]["abc"]["annotations"][1].update(segment=[40, 30]),
     "video 'abc' annotation 1: segment end 30.0 is before its start 40.0"),
    (lambda d: d["database"]["abc"]["annotations"][0].update(segment=[1]), "annotation 0"),
    (lambda d: d["database"]["abc"]["annotations"][0].pop("label"), "missing key 'label'"),
    (lambda d: d["database"]["v_def"].update(subset=3), "video 'v_def': 'subset'"),
    (lambda d: d["database"]["v_def"]["annotations"][0].update(segment=[0, float("nan")]),
     "finite"),
])
def test_read_ground_truth_errors_name_file_and_video(tmp_path, mutate, needle):
    d = json.loads(json.dumps(GT))
    mutate(d)
    p = tmp_path / "bad_gt.json"
    p.write_text(json.dumps(d))
    with pytest.raises(FormatError) as e:
        read_ground_truth(p)
    assert str(p) in str(e.value) and needle in str(e.value)


def test_read_ground_truth_not_json(tmp_path):
    p = _write(tmp_path / "broken.json", '{"database": {')
    with pytest.raises(FormatError, match="broken.json: not valid JSON"):
        read_ground_truth(p)
    with pytest.raises(FileNotFoundError, match="nothere.json"):
        read_ground_truth(tmp_path / "nothere.json")


VIDEO_INFO = """video,numFrame,seconds,fps,rfps,subset,featureFrame
v_---9CpRcKoU,418,14.07,30.0,29.7085998579,training,400
v_--0edUL8zmA,2303,92.18,25.0,24.9837274897,validation,2304
"""


def test_read_video_info_csv(tmp_path):
    p = _write(tmp_path / "video_info_new.csv", VIDEO_INFO)
    info = read_video_info_csv(p)
    assert list(info) == ["v_---9CpRcKoU", "v_--0edUL8zmA"]
    assert info["v_---9CpRcKoU"] == {"num_frames": 418, "seconds": 14.07, "fps": 30.0,
                                     "rfps": 29.7085998579, "subset": "training",
                                     "feature_frame": 400}
    assert info["v_--0edUL8zmA"]["feature_frame"] == 2304  # may exceed numFrame (real data)


@pytest.mark.parametrize("text, needle", [
    (VIDEO_INFO.replace("featureFrame", "featFrame"), "missing column(s) ['featureFrame']"),
    (VIDEO_INFO.replace("418,14.07", "abc,14.07"), "line 2 (video 'v_---9CpRcKoU') numFrame"),
    (VIDEO_INFO.replace(",training,400", ",training"), "line 2: 6 fields"),
    (VIDEO_INFO.replace("92.18", "0"), "seconds must be positive"),
    (VIDEO_INFO + VIDEO_INFO.splitlines()[1] + "\n", "duplicated video"),
    ("", "empty file"),
])
def test_read_video_info_csv_errors(tmp_path, text, needle):
    p = _write(tmp_path / "vi.csv", text)
    with pytest.raises(FormatError) as e:
        read_video_info_csv(p)
    assert str(p) in str(e.value) and needle in str(e.value)


ANNO = {
    "v_QOlSCBRmfWY": {"duration_second": 82.73, "duration_frame": 2067,
                      "annotations": [{"segment": [6.19, 77.73], "label": "Ballet"}],
                      "feature_frame": 2064},
    "v_KrwFx7kw2pY": {"duration_second": 223.66, "duration_frame": 5590, "annotations": [],
                      "feature_frame": 5584},
}


def test_read_anno_action_json(tmp_path):
    p = tmp_path / "anet_anno_action.json"
    p.write_text(json.dumps(ANNO))
    a = read_anno_action_json(p)
    assert a["v_QOlSCBRmfWY"] == {"duration_second": 82.73, "duration_frame": 2067,
                                  "feature_frame": 2064, "annotations": [(6.19, 77.73, "Ballet")]}
    assert a["v_KrwFx7kw2pY"]["annotations"] == []
    bad = json.loads(json.dumps(ANNO))
    del bad["v_KrwFx7kw2pY"]["feature_frame"]
    p.write_text(json.dumps(bad))
    with pytest.raises(FormatError, match=r"anet_anno_action.json: video 'v_KrwFx7kw2pY': "
                                          r"missing key 'feature_frame'"):
        read_anno_action_json(p)
    bad = json.loads(json.dumps(ANNO))
    bad["v_QOlSCBRmfWY"]["duration_frame"] = 20.5
    p.write_text(json.dumps(bad))
    with pytest.raises(FormatError, match="expected an integer"):
        read_anno_action_json(p)
    p.write_text(json.dumps(GT))
    with pytest.raises(FormatError, match="read_ground_truth"):
        read_anno_action_json(p)


THUMOS = """video-name,t-init,t-end,f-init,f-end,video-duration,frame-rate,video-frames,label-idx
video_validation_0000051,67.5,75.9,2025,2277,169.79,30.0,5094,12
video_validation_0000051,85.9,90.6,2577,2718,169.79,30.0,5094,-1
video_test_0000004,0.2,1.1,6,33,33.47,30.0,1004,8
"""


def test_read_thumos_csv(tmp_path):
    p = _write(tmp_path / "thumos.csv", THUMOS)
    t = read_thumos_csv(p)
    assert list(t) == ["video_validation_0000051", "video_test_0000004"]
    v = t["video_validation_0000051"]
    assert v["duration"] == 169.79 and v["fps"] == 30.0 and v["num_frames"] == 5094
    assert v["annotations"] == [(67.5, 75.9, 12, False), (85.9, 90.6, -1, True)]
    # pandas' index column is tolerated
    lines = THUMOS.splitlines()
    indexed = "\n".join([","+lines[0]] + [f"{i},{x}" for i, x in enumerate(lines[1:])]) + "\n"
    assert read_thumos_csv(_write(tmp_path / "idx.csv", indexed)) == t


@pytest.mark.parametrize("old, new, needle", [
    ("label-idx", "label", "missing column(s) ['label-idx']"),
    ("67.5,75.9", "75.9,67.5", "t-end 67.5 is before t-init 75.9"),
    ("0.2,1.1,6,33,33.47", "0.2,1.1,6,33,abc", "line 4 (video 'video_test_0000004') video-duration"),
    ("85.9,90.6,2577,2718,169.79", "85.9,90.6,2577,2718,170.5", "disagree with an earlier row"),
    (",12\n", ",1.5\n", "expected an integer"),
])
def test_read_thumos_csv_errors(tmp_path, old, new, needle):
    p = _write(tmp_path / "th.csv", THUMOS.replace(old, new, 1))
    with pytest.raises(FormatError) as e:
        read_thumos_csv(p)
    assert str(p) in str(e.value) and needle in str(e.value)


def test_read_feature_csv(tmp_path):
    a = read_feature_csv(_write(tmp_path / "a.csv", "f0,f1,f2\n1,2,3\n4.5,5,-6e-1\n"))
    assert a.dtype == np.float32 and a.tolist() == [[1, 2, 3], [4.5, 5, np.float32(-0.6)]]
    b = read_feature_csv(_write(tmp_path / "b.csv", "rgb_0,rgb_1\n1,2\n"))  # any header
    assert b.shape == (1, 2)
    c = read_feature_csv(_write(tmp_path / "c.csv", "1,2\n3,4\n"))  # no header
    assert c.tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize("text, needle", [
    ("", "empty file"),
    ("f0,f1\n", "no data rows"),
    ("f0,f1,f2\n1,2,3\n4,5\n", "number of columns changed"),
    ("f0,f1,f2\n1,x,3\n", "could not convert"),
    ("f0,f1\n1,2,3\n", "the header has 2 columns but the rows have 3"),
])
def test_read_feature_csv_errors(tmp_path, text, needle):
    p = _write(tmp_path / "v_bad.csv", text)
    with pytest.raises(FormatError) as e:
        read_feature_csv(p)
    assert str(p) in str(e.value) and needle in str(e.value)


def test_csv_feature_folder(tmp_path):
    d = tmp_path / "csv_mean_100"
    d.mkdir()
    _write(d / "v_abc.csv", "f0,f1\n1,2\n3,4\n5,6\n")
    _write(d / "v_x_y.csv", "f0,f1\n1,2\n")
    _write(d / "notes.txt", "ignored")
    s = CsvFeatureFolder(d)
    assert s.keys() == ["abc", "x_y"]
    assert s.has("abc") and s.has("v_abc") and "abc" in s and not s.has("zzz")
    assert s.load("v_abc").shape == (3, 2) and s.shape("abc") == (3, 2)
    assert s.load_range("abc", 1, 3).tolist() == [[3, 4], [5, 6]]
    with pytest.raises(MissingFeatureError, match="v_zzz.csv"):
        s.load("zzz")
    assert CsvFeatureFolder(d, prefix="").has("v_abc")
    with pytest.raises(FileNotFoundError):
        CsvFeatureFolder(tmp_path / "nope")


def test_hdf5_store_round_trip(tmp_path):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((7, 5)).astype(np.float32)
    b = rng.standard_normal((3, 2048)).astype(np.float64)
    p = tmp_path / "feats.h5"
    with h5py.File(p, "w") as f:
        f["v_abc"] = a
        f["def"] = b
        f["bad3d"] = np.zeros((2, 2, 2))
        f.create_group("grp")
    s = Hdf5FeatureFile(p)
    assert sorted(s.keys()) == ["bad3d", "def", "v_abc"]
    assert s.has("abc") and s.has("v_abc") and s.has("v_def") and not s.has("x")
    np.testing.assert_array_equal(s.load("abc"), a)
    got = s.load("def")
    assert got.dtype == np.float32 and got.shape == (3, 2048)
    np.testing.assert_allclose(got, b.astype(np.float32))
    np.testing.assert_array_equal(s.load_range("abc", 2, 5), a[2:5])
    assert s.shape("abc") == (7, 5)
    with pytest.raises(FormatError, match=r"feats.h5\[bad3d\]: expected a non-empty 2-D"):
        s.load("bad3d")
    with pytest.raises(MissingFeatureError, match="feats.h5"):
        s.load("x")
    # [C, L] layout
    p2 = tmp_path / "cl.h5"
    with h5py.File(p2, "w") as f:
        f["abc"] = a.T
    s2 = Hdf5FeatureFile(p2, layout="CL")
    np.testing.assert_array_equal(s2.load("abc"), a)
    np.testing.assert_array_equal(s2.load_range("abc", 1, 4), a[1:4])
    assert s2.shape("abc") == (7, 5)
    # picklable (DataLoader workers reopen the file)
    import pickle

    s3 = pickle.loads(pickle.dumps(s))
    np.testing.assert_array_equal(s3.load("abc"), a)
    bad = _write(tmp_path / "not.h5", "plain text")
    with pytest.raises(FormatError, match="not.h5: not a readable HDF5 file"):
        Hdf5FeatureFile(bad)


def test_proposal_json_round_trip(tmp_path):
    p = tmp_path / "out" / "proposals.json"
    results = {
        "abc": [{"segment": [1.0, 2.5], "score": 0.9}, {"segment": [0, 10], "score": 0.1}],
        "def": np.array([[3.0, 4.0, 0.5], [0.0, 1.0, 0.25]]),
        "ghi": [],
    }
    write_proposal_json(results, p)
    doc = json.loads(p.read_text())
    assert doc["version"] == "VERSION 1.3" and doc["external_data"] == {}
    back = read_proposal_json(p)
    assert back["abc"] == [{"segment": [1.0, 2.5], "score": 0.9}, {"segment": [0.0, 10.0], "score": 0.1}]
    assert back["def"] == [{"segment": [3.0, 4.0], "score": 0.5}, {"segment": [0.0, 1.0], "score": 0.25}]
    assert back["ghi"] == []
    # detections carry labels
    write_proposal_json({"abc": [{"segment": [1, 2], "score": 0.3, "label": "Surfing"}]}, p)
    assert read_proposal_json(p, require_label=True)["abc"][0]["label"] == "Surfing"
    with pytest.raises(FormatError, match="missing key 'label'"):
        read_proposal_json({"results": {"a": [{"segment": [1, 2], "score": 1}]}},
                           require_label=True)
    with pytest.raises(ValueError, match="video 'a' proposal 0: segment end"):
        write_proposal_json({"a": [{"segment": [2, 1], "score": 0.1}]}, tmp_path / "x.json")
    with pytest.raises(ValueError, match="non-finite"):
        write_proposal_json({"a": np.array([[0, 1, np.nan]])}, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("doc, needle", [
    ({"version": "x"}, "missing top-level key 'results'"),
    ({"results": {"a": {"segment": [1, 2]}}}, "video 'a': expected a list"),
    ({"results": {"a": [{"segment": [1, 2]}]}}, "video 'a' proposal 0: needs keys"),
    ({"results": {"a": [{"segment": [1, 2], "score": "0.5"}]}}, "'score': expected a number"),
    ({"results": {"a": [{"segment": [3, 2], "score": 0.5}]}}, "segment end 2.0 is before"),
])
def test_read_proposal_json_errors(tmp_path, doc, needle):
    p = tmp_path / "sub.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(FormatError) as e:
        read_proposal_json(p)
    assert str(p) in str(e.value) and needle in str(e.value)


def test_read_classification_json(tmp_path):
    p = tmp_path / "cuhk_anet17_pred.json"
    p.write_text(json.dumps({"results": {"abc": [{"label": "Surfing", "score": 0.8},
                                                 {"label": "Ballet", "score": 0.1}]},
                             "version": "x"}))
    assert read_classification_json(p) == {"abc": [{"label": "Surfing", "score": 0.8},
                                                   {"label": "Ballet", "score": 0.1}]}
    p.write_text(json.dumps({"results": {"abc": [{"label": 3, "score": 0.8}]}}))
    with pytest.raises(FormatError, match=r"cuhk_anet17_pred.json: video 'abc' entry 0: 'label'"):
        read_classification_json(p)
