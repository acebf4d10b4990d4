"""Tests of bsnpp.postprocess against literal re-expressions of BMN's Python loops.

The two ``bmn_*`` reference functions below transcribe JJBOY/BMN-Boundary-Matching-Network
(``main.py::BMN_inference``'s candidate double loop and ``post_processing.py::Soft_NMS`` +
``video_post_process``'s top-K cut) line by line, pandas sort included. The only change is
the documented fix of BMN's end-of-video quirk in the candidate loop (``end_index <= tscale``
with ``end_scores[min(end_index, tscale - 1)]``). ``bsnpp/bench/bench_postprocess.py`` loads
them from here as its baseline.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bsnpp.postprocess import (
    BSN_SOFT_NMS,
    CANDIDATE_COLUMNS,
    boundary_keep,
    generate_candidates,
    postprocess_many,
    postprocess_video,
    proposals_to_json,
    soft_nms,
    soft_nms_torch,
)

# --------------------------------------------------------------------------------------------
# literal references (BMN's loops)
# --------------------------------------------------------------------------------------------


def bmn_candidates_loop(start_scores, end_scores, clr_confidence, reg_confidence,
                        use_bins=True, fix_end=True):
    """BMN_inference's loops (duration x start map). ``fix_end`` = our end-of-video fix."""
    tscale = len(start_scores)
    dscale = clr_confidence.shape[0]
    max_start = max(start_scores)
    max_end = max(end_scores)
    start_bins = np.zeros(len(start_scores))
    start_bins[0] = 1
    for idx in range(1, tscale - 1):
        if start_scores[idx] > start_scores[idx + 1] and start_scores[idx] > start_scores[idx - 1]:
            start_bins[idx] = 1
        elif start_scores[idx] > (0.5 * max_start):
            start_bins[idx] = 1
    end_bins = np.zeros(len(end_scores))
    end_bins[-1] = 1
    for idx in range(1, tscale - 1):
        if end_scores[idx] > end_scores[idx + 1] and end_scores[idx] > end_scores[idx - 1]:
            end_bins[idx] = 1
        elif end_scores[idx] > (0.5 * max_end):
            end_bins[idx] = 1
    if not use_bins:
        start_bins[:] = 1
        end_bins[:] = 1

    new_props = []
    for idx in range(dscale):
        for jdx in range(tscale):
            start_index = jdx
            end_index = start_index + idx + 1
            ok = end_index <= tscale if fix_end else end_index < tscale
            eidx = min(end_index, tscale - 1)
            if ok and start_bins[start_index] == 1 and end_bins[eidx] == 1:
                xmin = start_index / tscale
                xmax = end_index / tscale
                xmin_score = start_scores[start_index]
                xmax_score = end_scores[eidx]
                clr_score = clr_confidence[idx, jdx]
                reg_score = reg_confidence[idx, jdx]
                score = xmin_score * xmax_score * clr_score * reg_score
                new_props.append([xmin, xmax, score, xmin_score, xmax_score, clr_score, reg_score])
    if not new_props:
        return np.zeros((0, 7))
    return np.array(new_props, dtype=np.float64)


def _iou_with_anchors(anchors_min, anchors_max, len_anchors, box_min, box_max):
    int_xmin = np.maximum(anchors_min, box_min)
    int_xmax = np.minimum(anchors_max, box_max)
    inter_len = np.maximum(int_xmax - int_xmin, 0.)
    union_len = len_anchors - inter_len + box_max - box_min
    jaccard = np.divide(inter_len, union_len)
    return jaccard


def bmn_soft_nms_loop(props, alpha=0.4, low=0.5, high=0.9, top_k=100):
    """post_processing.Soft_NMS + video_post_process's re-sort and top-K cut (BMN, verbatim)."""
    df = pd.DataFrame(np.asarray(props, dtype=np.float64)[:, :3], columns=["xmin", "xmax", "score"])
    if len(df) > 1:
        df = df.sort_values(by="score", ascending=False)
        tstart = list(df.xmin.values[:])
        tend = list(df.xmax.values[:])
        tscore = list(df.score.values[:])
        rstart, rend, rscore = [], [], []
        while len(tscore) > 0 and len(rscore) <= top_k:
            max_index = np.argmax(tscore)
            tmp_width = tend[max_index] - tstart[max_index]
            iou_list = _iou_with_anchors(tstart[max_index], tend[max_index], tmp_width,
                                         np.array(tstart), np.array(tend))
            iou_exp_list = np.exp(-np.square(iou_list) / alpha)
            for idx in range(0, len(tscore)):
                if idx != max_index:
                    tmp_iou = iou_list[idx]
                    if tmp_iou > low + (high - low) * tmp_width:
                        tscore[idx] = tscore[idx] * iou_exp_list[idx]
            rstart.append(tstart[max_index])
            rend.append(tend[max_index])
            rscore.append(tscore[max_index])
            tstart.pop(max_index)
            tend.pop(max_index)
            tscore.pop(max_index)
        df = pd.DataFrame()
        df["score"] = rscore
        df["xmin"] = rstart
        df["xmax"] = rend
    df = df.sort_values(by="score", ascending=False)
    out = []
    for j in range(min(top_k, len(df))):
        out.append([df.xmin.values[j], df.xmax.values[j], df.score.values[j]])
    return np.array(out, dtype=np.float64).reshape(-1, 3)


# --------------------------------------------------------------------------------------------
# random inputs
# --------------------------------------------------------------------------------------------


def _random_outputs(rng, T=40, D=None, quantise=None):
    D = T if D is None else D
    start = rng.random(T)
    end = rng.random(T)
    cls = rng.random((D, T))
    reg = rng.random((D, T))
    if quantise:  # few distinct values -> many exact ties in boundaries and scores
        start, end, cls, reg = (np.round(a * quantise) / quantise for a in (start, end, cls, reg))
    return start, end, cls, reg


def _random_props(rng, K, T=100, ties=False):
    s = rng.integers(0, T, K)
    e = np.minimum(s + rng.integers(1, T + 1, K), T)
    props = np.stack([s / T, e / T, rng.random(K)], axis=1)
    if ties:
        props[:, 2] = np.round(props[:, 2] * 8) / 8  # 9 distinct score values
        src = rng.integers(0, K, K // 10)
        dst = rng.integers(0, K, K // 10)
        props[dst] = props[src]  # exact duplicate proposals too
    return props


# --------------------------------------------------------------------------------------------
# candidates
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("boundary_filter", ["bmn", "none"])
def test_candidates_equal_literal_loop(seed, boundary_filter):
    rng = np.random.default_rng(seed)
    T = [40, 37, 16, 25][seed]
    D = [40, 20, 16, 7][seed]
    outs = _random_outputs(rng, T, D, quantise=5 if seed % 2 else None)
    got = generate_candidates(*outs, boundary_filter=boundary_filter)
    ref = bmn_candidates_loop(*outs, use_bins=boundary_filter == "bmn")
    assert got.shape == ref.shape and got.shape[1] == len(CANDIDATE_COLUMNS)
    np.testing.assert_array_equal(got, ref)  # same order, bit-identical


def test_candidates_without_fix_are_bmn_minus_video_end():
    rng = np.random.default_rng(5)
    outs = _random_outputs(rng, 30)
    got = generate_candidates(*outs, boundary_filter="none")
    bmn = bmn_candidates_loop(*outs, use_bins=False, fix_end=False)
    assert len(got) == 30 * 31 // 2 and len(bmn) == 29 * 30 // 2
    np.testing.assert_array_equal(got[got[:, 1] < 1.0], bmn)


def test_proposal_ending_at_video_end_is_produced():
    T = 10
    start = np.full(T, 0.1)
    start[3] = 0.9
    end = np.full(T, 0.1)
    end[6] = 0.9
    cls = np.ones((T, T))
    reg = np.ones((T, T))
    c = generate_candidates(start, end, cls, reg)
    at_end = c[c[:, 1] == 1.0]
    assert len(at_end) >= 1
    # [3/T, 1]: start peak at 3, video-end boundary scored with end[T-1]
    row = c[(c[:, 0] == 3 / T) & (c[:, 1] == 1.0)]
    assert len(row) == 1 and row[0, 4] == end[T - 1]
    assert row[0, 2] == pytest.approx(0.9 * 0.1)
    # the whole-video proposal [0, 1] always exists with the BMN filter when D == T
    assert ((c[:, 0] == 0.0) & (c[:, 1] == 1.0)).sum() == 1


def test_boundary_filter_rule():
    p = np.array([0.1, 0.3, 0.2, 0.2, 0.25, 0.6, 0.5, 0.31, 0.3])
    # interior peaks: 1 (0.3), 5 (0.6); > 0.3 (=0.5*max): 5, 6, 7; equal-to-threshold 1? 0.3 > 0.3 no,
    # but 1 is a peak. 3 is not a strict peak (0.2 == 0.2). Last index is never a start.
    s = boundary_keep(p, "start")
    e = boundary_keep(p, "end")
    assert s.tolist() == [True, True, False, False, False, True, True, True, False]
    assert e.tolist() == [False, True, False, False, False, True, True, True, True]


def test_sqrt_score_and_torch_inputs():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    outs = _random_outputs(rng, 20)
    a = generate_candidates(*outs, score_mode="sqrt")
    b = generate_candidates(*(torch.from_numpy(x).float() for x in outs), score_mode="sqrt")
    np.testing.assert_allclose(a[:, 2], a[:, 3] * a[:, 4] * np.sqrt(a[:, 5] * a[:, 6]), rtol=1e-15)
    np.testing.assert_array_equal(a[:, :2], b[:, :2])  # same candidates (float32 boundaries
    np.testing.assert_allclose(a[:, 2], b[:, 2], rtol=1e-6)  # may only round the scores)


# --------------------------------------------------------------------------------------------
# soft-NMS
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [False, True])
def test_soft_nms_equals_bmn_loop(seed, ties):
    rng = np.random.default_rng(100 + seed)
    K = [1500, 300, 50, 2, 1, 800][seed]
    props = _random_props(rng, K, ties=ties)
    kw = {} if seed % 3 else dict(BSN_SOFT_NMS)  # BSN's constants for some seeds
    got = soft_nms(props, **kw)
    ref = bmn_soft_nms_loop(props, **kw)
    assert got.shape == ref.shape == (min(K, 100), 3)
    np.testing.assert_array_equal(got, ref)  # same proposals, same order, bit-identical scores


def test_soft_nms_equals_bmn_loop_on_real_candidates():
    rng = np.random.default_rng(11)
    outs = _random_outputs(rng, 100)
    cand = generate_candidates(*outs, boundary_filter="none")
    assert len(cand) == 5050
    np.testing.assert_array_equal(soft_nms(cand), bmn_soft_nms_loop(cand))


def test_soft_nms_heavy_ties_all_equal():
    # every score equal: the order is entirely decided by the (pandas) tie order
    rng = np.random.default_rng(3)
    props = _random_props(rng, 400)
    props[:, 2] = 0.5
    np.testing.assert_array_equal(soft_nms(props), bmn_soft_nms_loop(props))


def test_soft_nms_hand_worked():
    # A=[0, .5] .9 ; B=[.1, .5] .8 ; C=[0, .3] .85
    props = np.array([[0.0, 0.5, 0.9], [0.1, 0.5, 0.8], [0.0, 0.3, 0.85]])
    # BMN (alpha .4, thr .5 + .4 w). Step 1 selects A (w .5, thr .7):
    #   IoU(A,B) = .4/.5 = .8 > .7 -> B *= exp(-.64/.4); IoU(A,C) = .3/.5 = .6 <= .7 -> C kept.
    # Step 2 selects C (.85 > .8 e^-1.6 = .1615; w .3, thr .62): IoU(C,B) = .2/.5 = .4 -> none.
    # Step 3 selects B.
    out = soft_nms(props)
    assert out[:, :2].tolist() == [[0.0, 0.5], [0.0, 0.3], [0.1, 0.5]]
    assert out[:, 2] == pytest.approx([0.9, 0.85, 0.8 * np.exp(-1.6)], rel=1e-12)
    # BSN constants (alpha .75, thr .65 + .25 w = .775 for A): B *= exp(-.64/.75)
    out = soft_nms(props, **BSN_SOFT_NMS)
    assert out[:, 2] == pytest.approx([0.9, 0.85, 0.8 * np.exp(-0.64 / 0.75)], rel=1e-12)
    # a wider threshold (low = high = .85) suppresses nothing
    out = soft_nms(props, low=0.85, high=0.85)
    assert out[:, 2].tolist() == [0.9, 0.85, 0.8]
    # top_k = 2 keeps A and C
    out = soft_nms(props, top_k=2)
    assert out[:, :2].tolist() == [[0.0, 0.5], [0.0, 0.3]]


def test_soft_nms_keep_count_is_bmn_off_by_one():
    # BMN's loop selects top_k + 1 (101) proposals, then the final cut keeps top_k
    rng = np.random.default_rng(0)
    props = _random_props(rng, 150)
    assert len(soft_nms(props, top_k=100)) == 100
    assert len(soft_nms(props, top_k=100, max_keep=1000)) == 100
    assert len(soft_nms(props, top_k=1000)) == 150
    assert len(soft_nms(props, max_keep=5)) == 5
    # the 101st selection only matters through the final re-sort, which cannot reorder a
    # non-increasing sequence; the cut keeps the first 100 selections
    assert np.all(np.diff(soft_nms(props)[:, 2]) <= 0)


def test_soft_nms_stable_order_and_max_candidates():
    rng = np.random.default_rng(1)
    props = _random_props(rng, 500)  # continuous scores: no ties, tie order irrelevant
    np.testing.assert_array_equal(soft_nms(props, tie_order="stable"), soft_nms(props))
    capped = soft_nms(props, max_candidates=200)
    assert capped.shape == (100, 3)
    top200 = props[np.argsort(-props[:, 2])[:200]]
    np.testing.assert_array_equal(capped, bmn_soft_nms_loop(top200))


def _check_torch_batch(device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(21)
    counts = [700, 0, 1, 2, 150, 101, 90]
    K = max(counts)
    batch = np.zeros((len(counts), K, 3))
    for b, n in enumerate(counts):
        batch[b, :n] = _random_props(rng, n) if n else np.zeros((0, 3))
    batch[4, :, 2] = np.round(batch[4, :, 2] * 8) / 8  # ties: both orders are stable here
    for kw in ({}, dict(BSN_SOFT_NMS), dict(top_k=20)):
        out, n = soft_nms_torch(torch.from_numpy(batch).to(device), torch.tensor(counts), **kw)
        out, n = out.cpu().numpy(), n.cpu().numpy()
        for b, c in enumerate(counts):
            ref = soft_nms(batch[b, :c], tie_order="stable", **kw)
            assert n[b] == len(ref)
            np.testing.assert_array_equal(out[b, : n[b], :2], ref[:, :2])
            np.testing.assert_allclose(out[b, : n[b], 2], ref[:, 2], rtol=1e-13, atol=0)
            assert not out[b, n[b]:].any()


def test_soft_nms_torch_batched_cpu():
    _check_torch_batch("cpu")


@pytest.mark.gpu
def test_soft_nms_torch_batched_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    _check_torch_batch("cuda")


def test_soft_nms_rejects_nan():
    with pytest.raises(ValueError):
        soft_nms(np.array([[0.0, 0.5, np.nan], [0.1, 0.2, 0.3]]))


# --------------------------------------------------------------------------------------------
# empty inputs, JSON, pipeline
# --------------------------------------------------------------------------------------------


def _no_candidate_outputs():
    # D = 1 (one-snippet proposals (s, s+1) only). Kept starts: 0 (always) and the peak 2;
    # kept ends: only the last position (flat low curve, no peak, nothing > 0.5 max), which
    # serves e = 5 and e = 6 (s = 4, 5: not starts) -> no candidate at all.
    T = 6
    start = np.array([0.1, 0.1, 0.9, 0.1, 0.1, 0.1])
    end = np.array([0.1, 0.1, 0.1, 0.1, 0.1, 0.9])
    return start, end, np.ones((1, T)), np.ones((1, T))


def test_empty_inputs():
    outs = _no_candidate_outputs()
    cand = generate_candidates(*outs)
    assert cand.shape == (0, 7)
    assert bmn_candidates_loop(*outs).shape == (0, 7)
    assert soft_nms(cand[:, :3]).shape == (0, 3)
    assert soft_nms(np.zeros((0, 3))).shape == (0, 3)
    assert postprocess_video(*outs, duration=12.0) == []
    sub = proposals_to_json({"a": np.zeros((0, 3))}, {"a": 3.0})
    assert sub["results"] == {"a": []}
    sub = postprocess_many({"a": outs}, {"a": 12.0})
    assert sub["results"] == {"a": []}


def test_json_round_trip_and_scaling(tmp_path):
    props = {
        "vid1": np.array([[0.1, 0.5, 0.9], [0.0, 1.0, 0.4], [-0.05, 1.2, 0.1]]),
        "vid2": np.array([[0.25, 0.75, 0.5]]),
    }
    dur = {"vid1": 120.0, "vid2": 8.0}
    path = tmp_path / "sub" / "proposals.json"
    sub = proposals_to_json(props, dur, path=path)
    loaded = json.loads(path.read_text())
    assert loaded == sub
    assert loaded["version"] == "VERSION 1.3" and loaded["external_data"] == {}
    r = loaded["results"]["vid1"]
    assert [x["score"] for x in r] == [0.9, 0.4, 0.1]
    assert r[0]["segment"] == pytest.approx([12.0, 60.0])
    assert r[1]["segment"] == [0.0, 120.0]
    assert r[2]["segment"] == [0.0, 120.0]  # clipped to [0, duration]
    assert loaded["results"]["vid2"] == [{"score": 0.5, "segment": [2.0, 6.0]}]
    with pytest.raises(KeyError):
        proposals_to_json({"x": props["vid2"]}, dur)


def test_postprocess_video_matches_steps():
    rng = np.random.default_rng(9)
    outs = _random_outputs(rng, 50)
    res = postprocess_video(*outs, duration=100.0, alpha=0.75, low=0.65, high=0.9)
    ref = bmn_soft_nms_loop(bmn_candidates_loop(*outs), alpha=0.75, low=0.65, high=0.9)
    assert len(res) == len(ref)
    np.testing.assert_array_equal([r["score"] for r in res], ref[:, 2])
    np.testing.assert_allclose([r["segment"] for r in res], ref[:, :2] * 100.0, rtol=0, atol=1e-12)
    with pytest.raises(TypeError):
        postprocess_video(*outs, duration=1.0, alhpa=0.3)


def test_postprocess_many_workers_and_torch(tmp_path):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    outputs, durs = {}, {}
    for i in range(6):
        s, e, c, r = _random_outputs(rng, 30)
        if i % 2:
            outputs[f"v{i}"] = {"start": torch.from_numpy(s), "end": torch.from_numpy(e),
                                "cls": torch.from_numpy(c), "reg": torch.from_numpy(r)}
        else:
            outputs[f"v{i}"] = (s, e, c, r)
        durs[f"v{i}"] = 10.0 + i
    one = postprocess_many(outputs, durs, workers=1)
    two = postprocess_many(outputs, durs, workers=2, path=tmp_path / "p.json")
    assert one == two
    assert list(one["results"]) == [f"v{i}" for i in range(6)]
    assert json.loads((tmp_path / "p.json").read_text()) == one
    s, e, c, r = outputs["v0"]
    assert one["results"]["v0"] == postprocess_video(s, e, c, r, 10.0)
