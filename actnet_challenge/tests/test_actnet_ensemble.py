import json
import math

import numpy as np
import pytest

from actnet_challenge.ensemble import ensemble_proposals, gaussian_soft_nms, normalise_scores
from actnet_challenge.ensemble import main as ensemble_main


def _sub(results):
    return {"version": "VERSION 1.3", "results": results, "external_data": {}}


def test_soft_nms_hand_worked():
    segs = np.array([[0, 10], [0, 10], [20, 30], [5, 15]], float)
    sc = np.array([0.9, 0.8, 0.5, 0.7])
    kept, ks = gaussian_soft_nms(segs, sc, sigma=0.5, top_k=10)
    # first [0,10]@0.9; the duplicate decays by exp(-1/0.5); [5,15] (tIoU 1/3) by exp(-(1/9)/0.5)
    d_dup, d_half = math.exp(-2.0), math.exp(-(1 / 9) / 0.5)
    assert ks[0] == pytest.approx(0.9)
    assert ks[1] == pytest.approx(0.7 * d_half) and kept[1].tolist() == [5, 15]
    assert ks[2] == pytest.approx(0.5)
    # the duplicate: decayed by the first pick, then by [5,15] (tIoU 1/3) again
    assert ks[3] == pytest.approx(0.8 * d_dup * d_half)
    assert len(gaussian_soft_nms(np.zeros((0, 2)), np.zeros(0))[0]) == 0


def test_normalisations():
    s = np.array([2.0, 1.0, 4.0])
    np.testing.assert_allclose(normalise_scores(s, "max"), [0.5, 0.25, 1.0])
    np.testing.assert_allclose(normalise_scores(s, "minmax"), [1 / 3, 0.0, 1.0])
    np.testing.assert_allclose(normalise_scores(s, "rank"), [2 / 3, 1 / 3, 1.0])
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalise_scores(s, "zscore")


def test_union_of_disjoint_sources_keeps_everything_with_normalised_weighted_scores():
    a = _sub({"v1": [{"segment": [0, 10], "score": 0.9}, {"segment": [20, 30], "score": 0.45}]})
    b = _sub({"v1": [{"segment": [40, 50], "score": 0.4}], "v2": [{"segment": [1, 2], "score": 0.3}]})
    fused = ensemble_proposals([a, b], weights=[1.0, 0.5], method="union", normalise="max")
    v1 = fused["results"]["v1"]
    assert [p["segment"] for p in v1] == [[0, 10], [20, 30], [40, 50]]
    np.testing.assert_allclose([p["score"] for p in v1], [1.0, 0.5, 0.5])
    assert fused["results"]["v2"] == [{"segment": [1.0, 2.0], "score": 0.5}]


def test_voting_rewards_agreement():
    a = _sub({"v": [{"segment": [0, 10], "score": 1.0}, {"segment": [50, 60], "score": 1.0}]})
    b = _sub({"v": [{"segment": [0, 10], "score": 1.0}]})
    fused = ensemble_proposals([a, b], method="voting", normalise="none", top_k=10)["results"]["v"]
    first = fused[0]
    assert first["segment"] == [0.0, 10.0] and first["score"] == pytest.approx(1.0)  # both sources agree
    alone = [p for p in fused if p["segment"] == [50.0, 60.0]][0]
    assert alone["score"] == pytest.approx(0.5)  # one of two sources


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="no proposal source"):
        ensemble_proposals([])
    with pytest.raises(ValueError, match="2 weights for 1 sources"):
        ensemble_proposals([_sub({})], weights=[1, 2])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        ensemble_proposals([bad])


def test_cli_writes_fused_file_and_prints_table(tmp_path, capsys):
    gt = {"version": "1.3", "taxonomy": [], "database": {
        "v": {"subset": "validation", "duration": 100.0, "annotations": [{"segment": [0, 10], "label": "x"}]}}}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    for name, seg in (("a", [0, 10]), ("b", [50, 60])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "p.json").write_text(json.dumps(_sub({"v": [{"segment": seg, "score": 0.5}]})))
    ensemble_main(["--proposals", str(tmp_path / "a/p.json"), str(tmp_path / "b/p.json"), "--weights", "1", "0.5",
                   "--gt", str(tmp_path / "gt.json"), "--out", str(tmp_path / "f.json")])
    out = capsys.readouterr().out
    assert "fused (union)" in out and (tmp_path / "f.json").is_file()
    # source a finds the only action at rank 1; with b weighted 0.5 the fusion ranks it first too
    assert "| a/p.json | 100.00" in out and "| b/p.json | 0.00" in out and "| fused (union) | 100.00" in out
