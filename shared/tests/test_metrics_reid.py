"""shared.metrics.reid: torchreid / fast-reid reference vectors, hand-worked cases, edge cases."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from shared.metrics.reid import evaluate_rank

FIX = Path(__file__).parent / "fixtures" / "reid"
CASES = ["case_handmade_4x10", "case_small_100x1000"]


def _load(case):
    d = np.load(FIX / case / "inputs.npz")
    args = tuple(d[k] for k in ("distmat", "q_pids", "g_pids", "q_camids", "g_camids"))
    return args, json.loads((FIX / case / "expected.json").read_text())


def _loop_reference(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    """torchreid eval_market1501 (Python path) + fast-reid mINP, per-query loop; curve padded
    with 1 instead of crashing when max_rank exceeds a query's remaining gallery."""
    indices = np.argsort(distmat, axis=1)
    matches = (g_pids[indices] == q_pids[:, np.newaxis]).astype(np.int32)
    all_cmc, all_ap, all_inp, nv = [], [], [], 0.0
    for q in range(distmat.shape[0]):
        order = indices[q]
        keep = np.invert((g_pids[order] == q_pids[q]) & (g_camids[order] == q_camids[q]))
        raw = matches[q][keep]
        if not np.any(raw):
            continue
        cmc = raw.cumsum()
        mp = np.max(np.where(raw == 1))
        all_inp.append(cmc[mp] / (mp + 1.0))
        cmc[cmc > 1] = 1
        cmc = np.concatenate([cmc[:max_rank], np.ones(max(0, max_rank - cmc.size), cmc.dtype)])
        all_cmc.append(cmc)
        nv += 1.0
        tmp = np.asarray([x / (i + 1.0) for i, x in enumerate(raw.cumsum())]) * raw
        all_ap.append(tmp.sum() / raw.sum())
    cmc = np.asarray(all_cmc).astype(np.float32).sum(0) / nv
    return cmc, np.mean(all_ap), np.mean(all_inp), np.asarray(all_ap)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("chunk_size", [None, 1, 7])
def test_vectors_exact(case, chunk_size):
    args, e = _load(case)
    out = evaluate_rank(*args, max_rank=e["max_rank"], chunk_size=chunk_size)
    assert out["cmc"].dtype == np.float32 and out["cmc"].shape == (e["max_rank"],)
    np.testing.assert_array_equal(out["cmc"].astype(np.float64), np.asarray(e["cmc"]))
    assert out["cmc"][0] == e["rank1"]
    assert out["mAP"] == e["mAP"]
    assert out["mINP"] == e["mINP_fastreid"]
    np.testing.assert_array_equal(out["AP"], np.asarray(e["per_valid_query_AP"]))
    assert out["num_valid_query"] == e["num_valid_query"]


@pytest.mark.parametrize("case", CASES)
def test_torch_input_equals_numpy(case):
    args, e = _load(case)
    ref = evaluate_rank(*args, max_rank=e["max_rank"])
    out = evaluate_rank(*(torch.from_numpy(a) for a in args), max_rank=e["max_rank"])
    np.testing.assert_array_equal(out["cmc"], ref["cmc"])
    np.testing.assert_array_equal(out["AP"], ref["AP"])
    assert out["mAP"] == ref["mAP"] and out["mINP"] == ref["mINP"]


def test_hand_worked():
    # query pid 1 cam 0. Ranked gallery: pid2, pid1/cam0 (junk), pid1/cam1, pid3, pid1/cam2.
    # Kept: [pid2, pid1, pid3, pid1] -> hits at ranks 2 and 4.
    # AP = (1/2 + 2/4) / 2 = 0.5, INP = 2 / 4 = 0.5, CMC = [0, 1, 1, 1] (+ 1s past the gallery).
    distmat = np.array([[0.1, 0.2, 0.3, 0.4, 0.5]], dtype=np.float32)
    out = evaluate_rank(distmat, np.array([1]), np.array([2, 1, 1, 3, 1]),
                        np.array([0]), np.array([0, 0, 1, 0, 2]), max_rank=7)
    np.testing.assert_array_equal(out["cmc"], np.array([0, 1, 1, 1, 1, 1, 1], np.float32))
    assert out["mAP"] == 0.5 and out["mINP"] == 0.5 and out["num_valid_query"] == 1


def test_query_without_match_is_skipped():
    distmat = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0.5, 0.1, 0.2]], dtype=np.float32)
    q_pids, q_cams = np.array([1, 9, 2]), np.array([0, 0, 0])
    g_pids, g_cams = np.array([1, 2, 2]), np.array([1, 0, 1])
    # query 1 (pid 9) has no gallery item; query 2's pid-2 item at index 1 is same-camera junk
    out = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=3)
    assert out["num_valid_query"] == 2
    np.testing.assert_array_equal(out["valid_query_index"], [0, 2])
    # query 0: match at rank 1 -> AP 1; query 2: kept [idx2 (pid2, hit), idx0] -> AP 1
    np.testing.assert_array_equal(out["AP"], [1.0, 1.0])
    np.testing.assert_array_equal(out["cmc"], np.ones(3, np.float32))


def test_query_whose_only_match_is_same_camera_is_skipped():
    distmat = np.array([[0.1, 0.2], [0.1, 0.2]], dtype=np.float32)
    out = evaluate_rank(distmat, np.array([1, 2]), np.array([1, 2]), np.array([0, 0]),
                        np.array([0, 1]), max_rank=2)
    assert out["num_valid_query"] == 1
    np.testing.assert_array_equal(out["cmc"], [0.0, 1.0])  # pid 2 is second


def test_max_rank_beyond_gallery_does_not_crash():
    args, _ = _load("case_handmade_4x10")
    out = evaluate_rank(*args, max_rank=25)
    assert out["cmc"].shape == (25,)
    ref = evaluate_rank(*args, max_rank=5)
    np.testing.assert_array_equal(out["cmc"][:5], ref["cmc"])
    np.testing.assert_array_equal(out["cmc"][9:], 1.0)  # at or past every remaining gallery
    assert out["mAP"] == ref["mAP"]


def test_no_valid_query_raises():
    with pytest.raises(ValueError, match="no valid query"):
        evaluate_rank(np.zeros((2, 3), np.float32), np.array([1, 2]), np.array([3, 4, 5]),
                      np.array([0, 0]), np.array([1, 1, 1]))


@pytest.mark.parametrize("bad", ["q_pids", "g_camids", "distmat", "max_rank"])
def test_shape_errors(bad):
    kw = dict(distmat=np.zeros((2, 3), np.float32), q_pids=np.array([1, 2]),
              g_pids=np.array([1, 2, 3]), q_camids=np.array([0, 0]), g_camids=np.array([1, 1, 1]))
    if bad == "q_pids":
        kw["q_pids"] = np.array([1, 2, 3])
    elif bad == "g_camids":
        kw["g_camids"] = np.array([[1, 1, 1]])
    elif bad == "distmat":
        kw["distmat"] = np.zeros(6, np.float32)
    else:
        kw["max_rank"] = 0
    with pytest.raises(ValueError):
        evaluate_rank(**kw)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bitwise_equal_to_loop_reference_with_ties(seed):
    rng = np.random.default_rng(seed)
    nq, ng = 37, 211
    # integer-valued distances -> many ties; non-contiguous ids
    distmat = rng.integers(0, 12, size=(nq, ng)).astype(np.float32)
    q_pids, g_pids = rng.integers(0, 15, nq) * 10 + 7, rng.integers(0, 15, ng) * 10 + 7
    q_cams, g_cams = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
    args = (distmat, q_pids, g_pids, q_cams, g_cams)
    cmc, m_ap, m_inp, aps = _loop_reference(*args, max_rank=50)
    for chunk in (None, 5):
        out = evaluate_rank(*args, max_rank=50, chunk_size=chunk)
        np.testing.assert_array_equal(out["cmc"], cmc)
        np.testing.assert_array_equal(out["AP"], aps)
        assert out["mAP"] == m_ap and out["mINP"] == m_inp


def test_stable_sort_kind_orders_ties_by_gallery_index():
    # all distances tied: stable order = gallery order -> the match at index 2 is rank 3
    out = evaluate_rank(np.zeros((1, 4), np.float32), np.array([5]), np.array([1, 2, 5, 3]),
                        np.array([0]), np.array([1, 1, 1, 1]), max_rank=4, sort_kind="stable")
    np.testing.assert_array_equal(out["cmc"], [0, 0, 1, 1])
    assert out["mAP"] == pytest.approx(1 / 3, abs=1e-15)
