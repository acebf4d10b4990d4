"""Proposal ensembles (the report's "ensemble strategy" for proposal diversity).

Any number of proposal files in the ActivityNet submission JSON (from bsnpp/eval.py with other
configs or features, or from any other generator) are fused per video:

* per-source score normalisation (`max`: divide by the video's best score; `minmax`; `rank`:
  1 - rank/K; `none`) and a weight per source;
* `union`: the weighted, normalised proposals of all sources pooled, then Gaussian Soft-NMS;
* `voting`: every pooled proposal is rescored by agreement — the weighted mean over sources of the
  best-matching proposal's score (tIoU >= --vote-iou; 0 for a source without a match) — and its
  boundaries refined as the score-weighted mean of the matched proposals; then Soft-NMS (voting
  after NMS would re-inflate the duplicates that NMS decayed).

    python ensemble.py --proposals a.json b.json [--weights 1 1] [--method union|voting]
                       --gt activity_net.v1-3.min.json --out fused.json
prints AR@1/5/10/100 and AUC of every source and of the fusion side by side.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from shared.formats.activitynet import proposal_submission, read_proposal_json, write_submission
from shared.metrics.activitynet import evaluate_proposals, segment_tiou

__all__ = ["gaussian_soft_nms", "normalise_scores", "ensemble_proposals", "proposal_table"]


def _tiou_one(seg: np.ndarray, segs: np.ndarray) -> np.ndarray:
    inter = np.clip(np.minimum(seg[1], segs[:, 1]) - np.maximum(seg[0], segs[:, 0]), 0, None)
    union = (seg[1] - seg[0]) + (segs[:, 1] - segs[:, 0]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def gaussian_soft_nms(segments: np.ndarray, scores: np.ndarray, sigma: float = 0.4, threshold: float = 0.0,
                      top_k: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian Soft-NMS (Bodla et al. 2017) on temporal segments [K, 2]: repeatedly keep the best
    proposal and decay the others by exp(-tIoU^2 / sigma) where tIoU > threshold; at most top_k.
    Each step is one vectorised update over the remaining proposals."""
    segs = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    sc = np.asarray(scores, dtype=np.float64).reshape(-1).copy()
    keep_s, keep_sc = [], []
    alive = np.ones(len(sc), dtype=bool)
    while alive.any() and len(keep_s) < top_k:
        i = int(np.flatnonzero(alive)[np.argmax(sc[alive])])
        keep_s.append(segs[i])
        keep_sc.append(sc[i])
        alive[i] = False
        rest = np.flatnonzero(alive)
        if len(rest):
            t = _tiou_one(segs[i], segs[rest])
            decay = np.where(t > threshold, np.exp(-(t ** 2) / sigma), 1.0)
            sc[rest] *= decay
    if not keep_s:
        return np.zeros((0, 2)), np.zeros(0)
    return np.stack(keep_s), np.asarray(keep_sc)


def normalise_scores(scores: np.ndarray, method: str = "max") -> np.ndarray:
    """Per-video normalisation of one source's scores, so that sources on different scales mix."""
    s = np.asarray(scores, dtype=np.float64)
    if len(s) == 0 or method == "none":
        return s.copy()
    if method == "max":
        m = s.max()
        return s / m if m > 0 else np.zeros_like(s)
    if method == "minmax":
        lo, hi = s.min(), s.max()
        return (s - lo) / (hi - lo) if hi > lo else np.ones_like(s)
    if method == "rank":
        order = np.argsort(-s, kind="stable")
        r = np.empty(len(s))
        r[order] = np.arange(len(s))
        return 1.0 - r / len(s)
    raise ValueError(f"unknown normalisation {method!r}: use max, minmax, rank or none")


def _as_arrays(results: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for vid, props in results.items():
        if props:
            seg = np.array([p["segment"] for p in props], dtype=np.float64).reshape(-1, 2)
            sc = np.array([p["score"] for p in props], dtype=np.float64)
        else:
            seg, sc = np.zeros((0, 2)), np.zeros(0)
        out[vid] = (seg, sc)
    return out


def ensemble_proposals(sources: list, weights=None, method: str = "union", normalise: str = "max",
                       sigma: float = 0.4, nms_threshold: float = 0.0, top_k: int = 100,
                       vote_iou: float = 0.7) -> dict:
    """Fuse proposal sources (paths or parsed submission dicts); returns a submission dict."""
    if not sources:
        raise ValueError("ensemble_proposals: no proposal source given")
    weights = [1.0] * len(sources) if weights is None else [float(w) for w in weights]
    if len(weights) != len(sources):
        raise ValueError(f"{len(weights)} weights for {len(sources)} sources")
    if method not in ("union", "voting"):
        raise ValueError(f"unknown ensemble method {method!r}: use union or voting")
    parsed = [_as_arrays(read_proposal_json(s)) for s in sources]
    videos = sorted(set().union(*[p.keys() for p in parsed]))
    fused = {}
    for vid in videos:
        per_source = []
        for src, w in zip(parsed, weights):
            seg, sc = src.get(vid, (np.zeros((0, 2)), np.zeros(0)))
            per_source.append((seg, normalise_scores(sc, normalise) * w))
        seg = np.concatenate([p[0] for p in per_source])
        sc = np.concatenate([p[1] for p in per_source])
        if method == "voting" and len(seg):
            # agreement scores first, then Soft-NMS (rescoring after NMS would undo its decay)
            refined, sc = _vote(seg, per_source, weights, vote_iou)
            kept, kept_sc = gaussian_soft_nms(refined, sc, sigma, nms_threshold, top_k)
        else:
            kept, kept_sc = gaussian_soft_nms(seg, sc, sigma, nms_threshold, top_k)
        fused[vid] = np.column_stack([kept, kept_sc])
    return proposal_submission(fused, external_data={
        "used": False, "details": f"ensemble ({method}) of {len(sources)} proposal files"})


def _vote(kept: np.ndarray, per_source: list, weights: list, vote_iou: float):
    """Score voting: agreement score and score-weighted boundary refinement per proposal."""
    total_w = sum(weights)
    new_seg = np.zeros_like(kept)
    new_sc = np.zeros(len(kept))
    num = np.zeros_like(kept)
    den = np.zeros(len(kept))
    for seg, sc in per_source:
        if len(seg) == 0:
            continue
        t = segment_tiou(seg, kept)  # [len(kept), len(seg)]
        t = np.atleast_2d(t)
        match = t >= vote_iou
        best = np.where(match, sc[None, :], -np.inf).max(1)
        new_sc += np.where(np.isfinite(best), best, 0.0)
        w = match * sc[None, :]
        num += w @ seg
        den += w.sum(1)
    has = den > 0
    new_seg[has] = num[has] / den[has, None]
    new_seg[~has] = kept[~has]
    return new_seg, new_sc / max(total_w, 1e-12)


def proposal_table(gt, named_submissions: dict, subset: str = "validation", max_avg_nr_proposals: int = 100,
                   scored_on: str = "") -> tuple[str, dict, dict]:
    """(Markdown table of AR@1/5/10/100 (percent) and AUC for each named submission, the metrics,
    the evaluator's full results for plots); ``scored_on`` (which videos) goes under the table."""
    rows, metrics, full = [], {}, {}
    keys = ["AR@1", "AR@5", "AR@10", "AR@100", "AUC"]
    for name, sub in named_submissions.items():
        r = evaluate_proposals(gt, sub, subset=subset, max_avg_nr_proposals=max_avg_nr_proposals)
        m = {k: (100 * r[k] if k.startswith("AR@") else r[k]) for k in keys if k in r}
        metrics[name], full[name] = m, r
        rows.append(f"| {name} | " + " | ".join(f"{m[k]:.2f}" for k in keys if k in m) + " |")
    head = "| proposals | " + " | ".join(keys) + " |\n" + "|---" * (len(keys) + 1) + "|\n"
    return head + "\n".join(rows) + (f"\n\nscored on {scored_on}" if scored_on else ""), metrics, full


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("proposal ensemble", add_help=add_help)
    p.add_argument("--proposals", nargs="+", required=True, help="proposal submission JSON files")
    p.add_argument("--weights", nargs="+", type=float, default=None, help="one weight per file (default 1)")
    p.add_argument("--method", default="union", choices=["union", "voting"], help="fusion method")
    p.add_argument("--normalise", default="max", choices=["max", "minmax", "rank", "none"], help="per-source score normalisation")
    p.add_argument("--sigma", type=float, default=0.4, help="Gaussian Soft-NMS sigma")
    p.add_argument("--nms-threshold", type=float, default=0.0, help="decay only above this tIoU")
    p.add_argument("--top-k", type=int, default=100, help="proposals kept per video")
    p.add_argument("--vote-iou", type=float, default=0.7, help="tIoU for a match in score voting")
    p.add_argument("--gt", default="", help="ground-truth JSON: print AR/AUC of each source and the fusion")
    p.add_argument("--subset", default="validation", help="evaluated subset")
    p.add_argument("--out", default="", help="write the fused proposals here")
    return p


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    fused = ensemble_proposals(args.proposals, args.weights, args.method, args.normalise, args.sigma,
                               args.nms_threshold, args.top_k, args.vote_iou)
    if args.out:
        write_submission(fused, args.out)
        print(f"fused proposals: {args.out}")
    if args.gt:
        named = {Path(p).parent.name + "/" + Path(p).name: p for p in args.proposals}
        named[f"fused ({args.method})"] = fused
        print(proposal_table(args.gt, named, args.subset, args.top_k, f"{args.gt} ({args.subset})")[0])
    return fused


if __name__ == "__main__":
    main(sys.argv[1:])
