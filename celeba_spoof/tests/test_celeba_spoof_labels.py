"""The 44-integer label vectors, the label files (JSON and txt lists) and the validation split."""
import json

import pytest

from celeba_spoof import labels as L


def vec(attrs=None, stype=0, illum=0, env=0, spoof=0):
    return list(attrs or [0] * 40) + [stype, illum, env, spoof]


def test_parse_live_and_spoof_vectors():
    a = [0] * 40
    a[15] = a[31] = 1  # Eyeglasses, Smiling
    live = L.parse_label(vec(a))
    assert live.is_spoof == 0 and live.spoof_type == 0 and live.attributes[15] == 1
    assert L.ATTRIBUTES[15] == "Eyeglasses" and L.ATTRIBUTES[31] == "Smiling" and len(L.ATTRIBUTES) == 40
    sp = L.parse_label(vec(stype=9, illum=4, env=2, spoof=1))
    assert (L.SPOOF_TYPES[sp.spoof_type], L.ILLUMINATIONS[sp.illumination], L.ENVIRONMENTS[sp.environment]) == \
        ("Phone", "Dark", "Outdoor")
    assert sp.as_vector() == vec(stype=9, illum=4, env=2, spoof=1)
    assert L.parse_label([float(v) for v in vec(stype=1, illum=1, env=1, spoof=1)]).spoof_type == 1


@pytest.mark.parametrize("bad,msg", [
    (vec()[:43], "44 integers"), ("x" * 44, "44 integers"), (vec(stype=11, spoof=1), "outside 0..10"),
    (vec(illum=5), "outside 0..4"), (vec(env=3), "outside 0..2"), (vec(spoof=2), "outside 0..1"),
    (vec(stype=3, spoof=0), "contradicts"), (vec(stype=0, spoof=1), "contradicts"),
    ([2] + vec()[1:], "must be 0/1"), (vec()[:43] + [0.5], "non-integers")])
def test_bad_vectors_are_rejected_with_the_reason(bad, msg):
    with pytest.raises(L.LabelError, match=msg):
        L.parse_label(bad, "train_label.json['x']")


def test_json_label_file_keeps_bad_entries_apart(tmp_path):
    f = tmp_path / "train_label.json"
    f.write_text(json.dumps({"Data/train/1/live/000001.jpg": vec(),
                             "Data/train/1/spoof/000002.jpg": vec(stype=7, illum=1, env=1, spoof=1),
                             "Data/train/1/spoof/000003.jpg": [1, 2, 3]}))
    labels, bad = L.load_label_file(f)
    assert sorted(labels) == ["Data/train/1/live/000001.jpg", "Data/train/1/spoof/000002.jpg"]
    assert bad[0][0] == "Data/train/1/spoof/000003.jpg" and "44 integers" in bad[0][1]
    with pytest.raises(L.LabelError, match="1 bad entries"):
        L.load_label_file(f, strict=True)


@pytest.mark.parametrize("text,msg", [("{not json", "not valid JSON"), ("[1, 2]", "expected an object")])
def test_malformed_json_names_the_file(tmp_path, text, msg):
    f = tmp_path / "test_label.json"
    f.write_text(text)
    with pytest.raises(L.LabelError, match=f"test_label.json.*{msg}"):
        L.load_label_file(f)


def test_txt_lists_with_and_without_the_json(tmp_path):
    j = tmp_path / "train_label.json"
    j.write_text(json.dumps({"Data/train/1/live/a.jpg": vec(), "Data/train/1/spoof/b.jpg": vec(stype=1, illum=2, env=1, spoof=1)}))
    t = tmp_path / "train_label.txt"
    t.write_text("Data/train/1/live/a.jpg 0\nData/train/1/spoof/b.jpg\n\nData/train/2/spoof/c.jpg 1\nData/train/2/live/d.jpg\n")
    labels, bad = L.load_label_file(t)
    assert labels["Data/train/1/spoof/b.jpg"].illumination == 2          # completed from the JSON
    assert labels["Data/train/2/spoof/c.jpg"] == L.unknown_label(1)       # txt only: aux labels unknown
    assert [r for r, _ in bad] == ["Data/train/2/live/d.jpg"]             # no label anywhere
    t.write_text("Data/train/1/live/a.jpg 1\n")
    labels, bad = L.load_label_file(t)
    assert not labels and "disagrees" in bad[0][1]
    t.write_text("Data/train/1/live/a.jpg 3\n")
    with pytest.raises(L.LabelError, match=r"train_label.txt:1"):
        L.load_label_file(t)


def test_find_label_file(tmp_path):
    (tmp_path / "metas" / "protocol2" / "test_on_x").mkdir(parents=True)
    f = tmp_path / "metas" / "protocol2" / "test_on_x" / "test_label.txt"
    f.write_text("")
    assert L.find_label_file(tmp_path, "protocol2/test_on_x", "test") == f
    with pytest.raises(L.LabelError, match="no train label list"):
        L.find_label_file(tmp_path, "protocol2/test_on_x", "train")


def test_validation_subjects_are_whole_identities_and_deterministic():
    rels = [f"Data/train/{s}/{k}/{i:06d}.jpg" for s in range(100, 120) for k in ("live", "spoof") for i in range(3)]
    held = L.split_val_subjects(rels, 0.2, seed=0)
    assert len(held) == 4 and held == L.split_val_subjects(rels, 0.2, seed=0)
    assert held != L.split_val_subjects(rels, 0.2, seed=1)
    assert L.split_val_subjects(rels, 0.0) == set()
    assert L.subject_of("Data/train/4980/spoof/000003.jpg") == "4980"
    assert L.path_info("Data/test/7/live/x.png") == {"split": "test", "subject": "7", "kind": "live"}
