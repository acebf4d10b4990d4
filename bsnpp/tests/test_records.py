"""bsnpp.records: BSN's video_info_new.csv and anet_anno_action.json and the THUMOS14 CSV on small
hand-written files, and their error messages (the ActivityNet ground truth is shared.formats')."""

import json

import pytest

from bsnpp.records import read_anno_action_json, read_thumos_csv, read_video_info_csv
from shared.formats import FormatError

GT = {"version": "VERSION 1.3", "taxonomy": [], "database": {
    "abc": {"duration": 100.0, "subset": "training",
            "annotations": [{"segment": [10.0, 20.5], "label": "Surfing"}]}}}


def _write(path, text):
    path.write_text(text)
    return path


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
