"""The loop, written out: one training epoch, feature extraction, and the ranking metrics.

`rank_metrics` is the one place distances are turned into numbers: Euclidean (torchreid's squared
distance) or XQDA, optionally re-ranked, then `shared.metrics.reid.evaluate_rank` (torchreid's
Market-1501 protocol, max_rank 50). Results are percentages.
"""
from __future__ import annotations

import numpy as np
import torch

from cocas_reid.rerank import re_ranking
from cocas_reid.xqda import xqda_distance, xqda_fit
from shared import dist
from shared.device import autocast
from shared.finite import check_finite
from shared.log import MetricLogger
from shared.metrics.reid import evaluate_rank

__all__ = ["train_one_epoch", "extract", "model_features", "euclidean_squared", "rank_metrics", "evaluate"]


def _inputs(model, batch: dict, device):
    m = dist.unwrap(model)
    image = batch["image"].to(device, non_blocking=True) if m.biometric is not None else None
    clothes = batch["clothes"].to(device, non_blocking=True) if m.clothes is not None else None
    return image, clothes


def train_one_epoch(model, criterion, loader, optimizer, device, epoch: int, *, amp: bool = True,
                    clip_grad: float = 0.0, print_freq: int = 20) -> dict:
    """One pass of the PK sampler; returns the epoch's mean loss terms (averaged over ranks)."""
    model.train()
    meters = MetricLogger()
    for batch in meters.log_every(loader, print_freq, header=f"train {epoch}"):
        image, clothes = _inputs(model, batch, device)
        labels = batch["label"].to(device, non_blocking=True)
        with autocast(device, amp):
            out = model(image, clothes)
        losses = criterion(out, labels)  # fp32: the criterion casts its inputs
        total = losses["total"]
        check_finite(losses, f"epoch {epoch}", total)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        optimizer.step()
        meters.update(n=labels.numel(), lr=optimizer.param_groups[0]["lr"], **{k: v.detach() for k, v in losses.items()})
    return dist.reduce_dict(meters.averages())


def model_features(model, device, amp: bool = False):
    """batch -> the re-id feature f of the model (fp32 unless `amp`); the caller sets eval mode."""
    def fn(batch):
        image, clothes = _inputs(model, batch, device)
        with autocast(device, amp):
            return model(image, clothes)["feat"]
    return fn


@torch.no_grad()
def extract(fn, loader, n: int | None = None) -> np.ndarray | None:
    """Features of every item of `loader`'s dataset in dataset order (float32), on rank 0 (None
    elsewhere). Each rank extracts its shard; DistributedSampler's padding repeats items, which
    land on the same row."""
    idx, feats = [], []
    for batch in loader:
        feats.append(fn(batch).float().cpu())
        idx.append(batch["index"])
    local = (torch.cat(idx).numpy(), torch.cat(feats).numpy()) if idx else (np.zeros(0, np.int64), None)
    parts = dist.all_gather_object(local)
    if not dist.is_main():
        return None
    n = len(loader.dataset) if n is None else n
    dim = next(f.shape[1] for _, f in parts if f is not None)
    out, seen = np.zeros((n, dim), np.float32), np.zeros(n, bool)
    for i, f in parts:
        if f is not None:
            out[i], seen[i] = f, True
    if not seen.all():
        raise RuntimeError(f"{int((~seen).sum())} of {n} items got no feature")
    return out


def euclidean_squared(a, b) -> np.ndarray:
    """torchreid's `euclidean_squared_distance`: ||a||^2 + ||b||^2 - 2 a b^T in float32 (addmm)."""
    a, b = torch.as_tensor(np.asarray(a, np.float32)), torch.as_tensor(np.asarray(b, np.float32))
    m, n = a.shape[0], b.shape[0]
    d = a.pow(2).sum(dim=1, keepdim=True).expand(m, n) + b.pow(2).sum(dim=1, keepdim=True).expand(n, m).t()
    return d.addmm_(a, b.t(), beta=1, alpha=-2).numpy()


def rank_metrics(qf, gf, q_pids, g_pids, q_camids, g_camids, distance: str = "euclidean", rerank: bool = False,
                 same_camera_rule: str = "market", *, xqda: dict | None = None, max_rank: int = 50, k1: int = 20,
                 k2: int = 6, lambda_value: float = 0.3) -> dict:
    """mAP, CMC rank-1/5/10/20 and mINP in percent (plus `num_valid_query` and the settings).

    distance: `euclidean` or `xqda` (pass the fitted `xqda` model); rerank: k-reciprocal
    re-ranking with (k1, k2, lambda_value) on the same distance; same_camera_rule: `market` drops
    gallery items sharing the query's identity and camera, `none` keeps them (query camids -1).
    """
    if distance == "euclidean":
        def dfun(a, b):
            return euclidean_squared(a, b)
    elif distance == "xqda":
        if xqda is None:
            raise ValueError("distance='xqda' needs the fitted model (xqda=xqda_fit(train features, train pids))")

        def dfun(a, b):
            return xqda_distance(xqda, a, b)
    else:
        raise ValueError(f"distance {distance!r}: expected euclidean or xqda")
    if max_rank < 20:
        raise ValueError(f"max_rank {max_rank}: at least 20 (rank-20 is reported)")
    if same_camera_rule not in ("market", "none"):
        raise ValueError(f"same_camera_rule {same_camera_rule!r}: expected market or none")
    q_camids = np.asarray(q_camids) if same_camera_rule == "market" else np.full(len(q_pids), -1)
    distmat = dfun(qf, gf)
    if rerank:
        distmat = re_ranking(distmat, dfun(qf, qf), dfun(gf, gf), k1, k2, lambda_value)
    r = evaluate_rank(distmat, np.asarray(q_pids), np.asarray(g_pids), q_camids, np.asarray(g_camids), max_rank=max_rank)
    cmc = r["cmc"]
    return {"mAP": 100 * r["mAP"], "rank1": 100 * float(cmc[0]), "rank5": 100 * float(cmc[4]),
            "rank10": 100 * float(cmc[9]), "rank20": 100 * float(cmc[19]), "mINP": 100 * r["mINP"],
            "num_valid_query": int(r["num_valid_query"]), "distance": distance, "rerank": bool(rerank),
            "same_camera_rule": same_camera_rule}


def evaluate(model, loaders: dict, data, args, device, amp: bool = False) -> tuple[dict, dict] | None:
    """Features of the query (image + template) and gallery (image + clothes patch), the training
    set's too for XQDA, ranked by `rank_metrics` with the run's settings; rank 0 gets (metrics,
    features), the others None. Every rank must call it (the extraction is sharded)."""
    fn = model_features(model, device, amp)
    was_training = model.training
    model.eval()
    qf = extract(fn, loaders["query"])
    gf = extract(fn, loaders["gallery"])
    tf = extract(fn, loaders["train"]) if args.distance == "xqda" else None
    model.train(was_training)
    if not dist.is_main():
        return None
    q, g = data.splits["query"], data.splits["gallery"]
    xq = xqda_fit(tf, data.splits["train"].pids, args.xqda_lambda, args.xqda_dims) if tf is not None else None
    metrics = rank_metrics(qf, gf, q.pids, g.pids, q.camids, g.camids, args.distance, args.rerank, args.same_camera_rule,
                           xqda=xq, k1=args.k1, k2=args.k2, lambda_value=args.lambda_value)
    feats = {"qf": qf, "gf": gf, "q_pids": q.pids, "g_pids": g.pids, "q_camids": q.camids, "g_camids": g.camids}
    return metrics, feats
