"""Ranking: `engine.rank_metrics` against torchreid's numbers on the reference vectors
(fixtures/reid/case_small_100x1000, copied from shared/vectors), re-ranking and XQDA against
their per-sample loops, the same-camera rule."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cocas_reid.engine import euclidean_squared, rank_metrics
from cocas_reid.reference import re_ranking_loop, xqda_covariances_loop, xqda_distance_loop
from cocas_reid.rerank import re_ranking
from cocas_reid.xqda import xqda_covariances, xqda_distance, xqda_fit

CASE = Path(__file__).parent / "fixtures" / "reid" / "case_small_100x1000"


def _case():
    d = np.load(CASE / "inputs.npz")
    return d, json.loads((CASE / "expected.json").read_text())


def test_rank_metrics_exact_on_torchreid_vectors():
    d, e = _case()
    r = rank_metrics(d["qf"], d["gf"], d["q_pids"], d["g_pids"], d["q_camids"], d["g_camids"])
    # torchreid's numbers (eval_market1501, python path) on features -> squared Euclidean distances
    assert r["mAP"] == 100 * e["mAP"]
    assert r["rank1"] == 100 * e["rank1"] and r["rank5"] == 100 * e["rank5"]
    assert r["rank10"] == 100 * e["rank10"] and r["rank20"] == 100 * e["rank20"]
    assert r["mINP"] == 100 * e["mINP_fastreid"]
    assert r["num_valid_query"] == e["num_valid_query"] == 96
    assert (r["distance"], r["rerank"], r["same_camera_rule"]) == ("euclidean", False, "market")


def test_euclidean_squared_is_torchreids_distance():
    d, _ = _case()
    got = euclidean_squared(d["qf"], d["gf"])
    qf, gf = torch.from_numpy(d["qf"]), torch.from_numpy(d["gf"])
    ref = torch.cdist(qf.double(), gf.double()).pow(2).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-3)
    assert np.abs(got - d["distmat"]).max() < 1e-4  # the stored distmat came from the same formula


def test_same_camera_rule_none_keeps_same_camera_matches():
    # query pid 1 cam 0; gallery: pid 1 cam 0 nearest, then pid 2, then pid 1 cam 1
    qf = np.zeros((1, 2), np.float32)
    gf = np.array([[0.1, 0], [0.2, 0], [0.3, 0]], np.float32)
    args = (np.array([1]), np.array([1, 2, 1]), np.array([0]), np.array([0, 0, 1]))
    market = rank_metrics(qf, gf, *args)
    none = rank_metrics(qf, gf, *args, same_camera_rule="none")
    assert market["rank1"] == 0.0 and market["mAP"] == 50.0  # the same-camera match is removed
    assert none["rank1"] == 100.0 and none["mAP"] == pytest.approx(100 * (1 + 2 / 3) / 2)


def _features(rng, nq, ng, d, ids):
    centers = rng.normal(size=(ids, d))
    qp, gp = rng.integers(0, ids, nq), rng.integers(0, ids, ng)
    qf = (centers[qp] + 0.7 * rng.normal(size=(nq, d))).astype(np.float32)
    gf = (centers[gp] + 0.7 * rng.normal(size=(ng, d))).astype(np.float32)
    return qf, gf, qp, gp


@pytest.mark.parametrize("nq,ng,k1,k2,lam", [(40, 300, 20, 6, 0.3), (12, 50, 5, 1, 0.5), (3, 8, 20, 6, 0.3)])
def test_rerank_equals_the_loop(nq, ng, k1, k2, lam):
    rng = np.random.default_rng(nq)
    qf, gf, _, _ = _features(rng, nq, ng, 16, 10)
    qg, qq, gg = euclidean_squared(qf, gf), euclidean_squared(qf, qf), euclidean_squared(gf, gf)
    ref = re_ranking_loop(qg, qq, gg, k1, k2, lam)
    for chunk in (None, 7):
        got = re_ranking(qg, qq, gg, k1, k2, lam, chunk_size=chunk)
        assert got.shape == (nq, ng) and got.dtype == np.float32
        np.testing.assert_allclose(got, ref, atol=1e-6, rtol=0)


def test_rerank_improves_a_clustered_problem_and_rank_metrics_uses_it():
    rng = np.random.default_rng(1)
    qf, gf, qp, gp = _features(rng, 60, 400, 8, 20)
    cams = (rng.integers(0, 3, 60), rng.integers(0, 3, 400))
    plain = rank_metrics(qf, gf, qp, gp, *cams)
    rr = rank_metrics(qf, gf, qp, gp, *cams, rerank=True)
    assert rr["rerank"] and rr["mAP"] > plain["mAP"]


def test_xqda_covariances_and_distance_equal_the_loops():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(36, 5))
    pids = rng.integers(0, 7, 36)
    si, se = xqda_covariances(x, pids)
    ri, re_ = xqda_covariances_loop(x, pids)
    np.testing.assert_allclose(si, ri, atol=1e-12)
    np.testing.assert_allclose(se, re_, atol=1e-12)
    model = xqda_fit(x, pids)
    assert model["W"].shape[0] == 5 and (model["eigenvalues"] > 1).all()
    np.testing.assert_allclose(xqda_distance(model, x[:6], x[6:20]), xqda_distance_loop(model["W"], model["M"], x[:6], x[6:20]),
                               atol=1e-10)


def test_xqda_learns_a_metric_that_ignores_a_nuisance_direction():
    # identity lives in dims 0-1; dim 2 is large noise that Euclidean distance cannot ignore
    rng = np.random.default_rng(3)
    ids = 30
    centers = np.c_[rng.normal(size=(ids, 2)), np.zeros(ids)]

    def draw(n):
        p = rng.integers(0, ids, n)
        return centers[p] + np.c_[0.15 * rng.normal(size=(n, 2)), 5 * rng.normal(size=n)], p

    xt, pt = draw(600)
    qf, qp = draw(60)
    gf, gp = draw(300)
    cams = (np.zeros(60, int), np.ones(300, int))
    eu = rank_metrics(qf, gf, qp, gp, *cams)
    xq = rank_metrics(qf, gf, qp, gp, *cams, distance="xqda", xqda=xqda_fit(xt, pt))
    assert xq["mAP"] > eu["mAP"] + 30
    with pytest.raises(ValueError, match="fitted model"):
        rank_metrics(qf, gf, qp, gp, *cams, distance="xqda")
