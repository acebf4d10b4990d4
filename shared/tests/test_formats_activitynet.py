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
    classification_submission,
    load_ground_truth,
    load_submission,
    normalize_video_id,
    read_classification_json,
    read_feature_csv,
    read_ground_truth,
    read_proposal_json,
    write_classification_json,
    write_detection_json,
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


def test_load_ground_truth_columns(tmp_path):
    gt = load_ground_truth(GT)
    assert gt.video_ids == ["abc", "v_def", "ghi", "jkl"] and gt.subsets[1] == "validation"
    assert gt.counts.tolist() == [2, 1, 0, 0] and gt.labels == ["Surfing", "Ballet", "Surfing"]
    np.testing.assert_array_equal(gt.segments, [[10.0, 20.5], [30, 40], [0.01, 49.9]])
    assert gt.classes == ["Ballet", "Surfing"]
    # the evaluators need no duration; the per-video view does
    d = json.loads(json.dumps(GT))
    d["database"]["abc"].pop("duration")
    assert load_ground_truth(d).durations[0] is None
    with pytest.raises(FormatError, match="video 'abc': missing key 'duration'"):
        read_ground_truth(d)
    # unordered segments: refused unless asked (the official evaluators accept them)
    d["database"]["abc"]["annotations"][0]["segment"] = [20, 10]
    with pytest.raises(FormatError, match="segment end 10.0 is before"):
        load_ground_truth(d)
    assert load_ground_truth(d, ordered_segments=False).segments[0].tolist() == [20, 10]


def test_load_submission_columns_and_errors_name_the_row(tmp_path):
    doc = {"results": {"a": [{"segment": [0, 1], "score": 3}, {"segment": [2, 4], "score": 1}],
                       "b": [{"segment": [1, 2], "score": 2, "label": "x"}], "c": []}}
    sub = load_submission(doc)
    assert sub.video_ids == ["a", "b", "c"] and sub.counts.tolist() == [2, 1, 0]
    assert sub.scores.dtype == np.int64 and sub.scores.tolist() == [3, 1, 2]  # the official dtype
    assert sub.labels == [None, None, "x"]
    assert load_submission(doc, exclude={"a"}).video_ids == ["b", "c"]
    assert load_submission(doc, labels="ignore").labels is None
    doc["results"]["a"][1]["score"] = 0.5
    assert load_submission(doc).scores.dtype == np.float64
    rows = [{"segment": [i, i + 1], "score": 0.5} for i in range(50)]
    for bad, needle in [({"score": float("nan")}, "video 'v' proposal 37 'score': expected a finite number, got NaN"),
                        ({"score": True}, "video 'v' proposal 37 'score': expected a number"),
                        ({"segment": [1, "2"]}, "video 'v' proposal 37 segment end: expected a number"),
                        ({"segment": [3, float("inf")]}, "video 'v' proposal 37 segment end: expected a finite"),
                        ({"segment": [3, 2]}, "video 'v' proposal 37: segment end 2.0 is before its start 3.0"),
                        ({"label": 7}, "video 'v' proposal 37: 'label' must be a string")]:
        rr = [dict(r) for r in rows]
        rr[37].update(bad)
        with pytest.raises(FormatError) as e:
            load_submission({"results": {"w": rows, "v": rr}})
        assert needle in str(e.value), str(e.value)
    rr = [dict(r) for r in rows]
    rr[37]["segment"] = [3, 2]
    assert load_submission({"results": {"v": rr}}, ordered_segments=False).segments[37].tolist() == [3, 2]
    with pytest.raises(FormatError, match="video 'v' proposal 1: missing key 'label'"):
        load_submission({"results": {"v": [{"segment": [0, 1], "score": 1, "label": "a"},
                                           {"segment": [0, 1], "score": 1}]}}, labels="required")


def test_detection_and_classification_writers(tmp_path):
    dets = {"abc": [{"segment": [1, 2], "score": 0.3, "label": "Surfing"}], "def": []}
    p = write_detection_json(dets, tmp_path / "det.json", external_data={"used": False})
    doc = json.loads(p.read_text())
    assert doc["version"] == "VERSION 1.3" and doc["external_data"] == {"used": False}
    assert read_proposal_json(p, require_label=True) == {
        "abc": [{"segment": [1.0, 2.0], "score": 0.3, "label": "Surfing"}], "def": []}
    with pytest.raises(ValueError, match="video 'abc' proposal 0: a detection needs a 'label'"):
        write_detection_json({"abc": [{"segment": [1, 2], "score": 0.3}]}, tmp_path / "x.json")
    with pytest.raises(ValueError, match="detections need labels"):
        write_detection_json({"abc": np.array([[0.0, 1.0, 0.5]])}, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()
    p = write_classification_json({"abc": {"Ballet": 0.1, "Surfing": 0.8}}, tmp_path / "cls.json")
    assert read_classification_json(p) == {"abc": [{"label": "Surfing", "score": 0.8},
                                                   {"label": "Ballet", "score": 0.1}]}
    with pytest.raises(ValueError, match="non-finite class score"):
        classification_submission({"abc": {"Ballet": float("nan")}})
