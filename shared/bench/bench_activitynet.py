"""Benchmark of ``shared.metrics.activitynet`` against a plain per-prediction reference loop.

The reference functions below re-express the official ActivityNet evaluators
(activitynet/ActivityNet ``Evaluation/eval_proposal.py`` / ``eval_detection.py``, commit 82304fa9)
as straightforward Python loops, one prediction (detection) or one video and curve point
(proposals) at a time, without pandas. They are also used by the tests as an independent
cross-check on random inputs.

Usage::

    python -m shared.bench.bench_activitynet            # 2,000 videos, ~200k detections
    python -m shared.bench.bench_activitynet --quick    # 300 videos
    python -m shared.bench.bench_activitynet --videos 500 --classes 100 --dets-per-video 60
"""
from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np

OFFICIAL_TIOU = np.linspace(0.5, 0.95, 10)  # the evaluators' default tIoU thresholds

# --------------------------------------------------------------------------------------------
# Reference implementations (plain loops)
# --------------------------------------------------------------------------------------------


def _tiou_one(seg, segs):
    """tIoU of one [s, e] against rows of ``segs``, official float sequence."""
    s = np.maximum(seg[0], segs[:, 0])
    e = np.minimum(seg[1], segs[:, 1])
    inter = (e - s).clip(0)
    union = (segs[:, 1] - segs[:, 0]) + (seg[1] - seg[0]) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter.astype(float) / union


def _voc_ap(prec, rec):
    mprec = [0.0] + list(prec) + [0.0]
    mrec = [0.0] + list(rec) + [1.0]
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    ap = 0.0
    for i in range(1, len(mrec)):
        if mrec[i] != mrec[i - 1]:
            ap += (mrec[i] - mrec[i - 1]) * mprec[i]
    return ap


def _gt_subset(gt, subset):
    """-> classes (first-appearance order), list of (video, s, e, cidx) in file order."""
    classes, rows = {}, []
    for vid, v in gt["database"].items():
        if v["subset"] != subset:
            continue
        for ann in v.get("annotations") or []:
            lab = ann["label"]
            if lab not in classes:
                classes[lab] = len(classes)
            rows.append((vid, float(ann["segment"][0]), float(ann["segment"][1]), classes[lab]))
    return classes, rows


def reference_detection(gt, det, subset="validation", tiou_thresholds=OFFICIAL_TIOU):
    """Per-prediction loop; returns (ap [T, C], classes)."""
    thr = np.asarray(tiou_thresholds, dtype=float)
    classes, rows = _gt_subset(gt, subset)
    gt_by_class_video = defaultdict(lambda: defaultdict(list))
    npos = np.zeros(len(classes))
    for vid, s, e, c in rows:
        gt_by_class_video[c][vid].append((s, e))
        npos[c] += 1
    preds_by_class = defaultdict(list)
    all_scores = []
    for vid, lst in det["results"].items():
        for r in lst:
            c = classes.get(r["label"])
            if c is None:
                continue
            preds_by_class[c].append((vid, float(r["segment"][0]), float(r["segment"][1]),
                                      len(all_scores)))
            all_scores.append(r["score"])
    all_scores = np.asarray(all_scores)      # one dtype for all, like a DataFrame column
    ap = np.zeros((thr.size, len(classes)))
    for c in range(len(classes)):
        preds = preds_by_class.get(c, [])
        if not preds:
            continue
        scores = all_scores[[p[3] for p in preds]]
        order = np.argsort(scores)[::-1]
        gts = {v: np.asarray(g) for v, g in gt_by_class_video[c].items()}
        locks = {v: np.zeros((thr.size, len(g)), dtype=bool) for v, g in gts.items()}
        tp = np.zeros((thr.size, len(preds)))
        fp = np.zeros((thr.size, len(preds)))
        for rank, i in enumerate(order):
            vid, s, e, _ = preds[i]
            g = gts.get(vid)
            if g is None:
                fp[:, rank] = 1
                continue
            tiou = _tiou_one((s, e), g)
            by_tiou = tiou.argsort()[::-1]
            lock = locks[vid]
            for t in range(thr.size):
                for j in by_tiou:
                    if tiou[j] < thr[t]:
                        break
                    if lock[t, j]:
                        continue
                    tp[t, rank] = 1
                    lock[t, j] = True
                    break
                if tp[t, rank] == 0:
                    fp[t, rank] = 1
        tp_cum = np.cumsum(tp, axis=1)
        fp_cum = np.cumsum(fp, axis=1)
        rec = tp_cum / npos[c]
        prec = tp_cum / (tp_cum + fp_cum)
        for t in range(thr.size):
            ap[t, c] = _voc_ap(prec[t], rec[t])
    return ap, list(classes)


def reference_proposals(gt, props, subset="validation", max_avg_nr_proposals=100,
                        tiou_thresholds=OFFICIAL_TIOU):
    """Per-video, per-point loop; returns (recall [T, 100], avg_recall, proposals_per_video)."""
    thr = np.asarray(tiou_thresholds, dtype=float)
    _, rows = _gt_subset(gt, subset)
    gt_by_video = {}
    for vid, s, e, _ in rows:
        gt_by_video.setdefault(vid, []).append((s, e))
    videos = list(gt_by_video)
    all_scores = np.asarray([r["score"] for lst in props["results"].values() for r in lst])
    n_total = all_scores.size
    ratio = max_avg_nr_proposals * float(len(videos)) / n_total
    offsets, off = {}, 0
    for vid, lst in props["results"].items():
        offsets[vid] = off
        off += len(lst)
    score_mats, kept_total = [], 0
    for vid in videos:
        g = np.asarray(gt_by_video[vid])
        lst = props["results"].get(vid) or []
        if not lst:
            score_mats.append(np.zeros((len(g), 1)))
            continue
        segs = np.asarray([r["segment"] for r in lst], dtype=float)
        o = offsets[vid]
        order = np.argsort(all_scores[o:o + len(lst)])[::-1]
        nr = min(int(len(lst) * ratio), len(lst))
        kept_total += nr
        segs = segs[order][:nr]
        mat = np.empty((len(g), nr))
        for j in range(nr):
            mat[:, j] = _tiou_one(segs[j], g)
        score_mats.append(mat)
    pcn = np.arange(1, 101) / 100.0 * (max_avg_nr_proposals * float(len(videos)) / kept_total)
    recall = np.empty((thr.size, pcn.size))
    positives = sum(m.shape[0] for m in score_mats)
    for t in range(thr.size):
        matches = np.zeros(pcn.size)
        for mat in score_mats:
            hit = mat >= thr[t]
            n_cols = np.minimum((mat.shape[1] * pcn).astype(int), mat.shape[1])
            for j, n in enumerate(n_cols):
                matches[j] += np.count_nonzero(hit[:, :n].sum(axis=1))
        recall[t] = matches / positives
    return recall, recall.mean(axis=0), pcn * (float(kept_total) / len(videos))


# --------------------------------------------------------------------------------------------
# Realistic synthetic inputs
# --------------------------------------------------------------------------------------------
def make_case(n_videos=2000, n_classes=200, dets_per_video=100, props_per_video=100,
              n_train_videos=50, seed=0):
    """ActivityNet-like GT (1-3 segments per video, 1 class, sometimes 2), proposals jittered
    around the GT plus random ones, detections = proposals × top video classes. Segments are
    rounded to 0.01 s and scores to 4 decimals, so exact ties occur (as in real files)."""
    rng = np.random.default_rng(seed)
    names = [f"class_{i:03d}" for i in range(n_classes)]
    db, gt_segs = {}, {}
    vids = [f"vid{i:06d}" for i in range(n_videos + n_train_videos)]
    for i, vid in enumerate(vids):
        dur = float(rng.uniform(30, 240))
        n = int(rng.choice([1, 1, 1, 2, 2, 3, 5]))
        cls = [int(rng.integers(n_classes))]
        if rng.random() < 0.1:
            cls.append(int(rng.integers(n_classes)))
        anns = []
        for _ in range(n):
            length = dur * float(rng.uniform(0.05, 0.8))
            s = float(rng.uniform(0, dur - length))
            anns.append({"segment": [round(s, 2), round(s + length, 2)],
                         "label": names[cls[int(rng.integers(len(cls)))]]})
        db[vid] = {"subset": "validation" if i < n_videos else "training",
                   "duration": round(dur, 2), "annotations": anns}
        gt_segs[vid] = (dur, [a["segment"] for a in anns], cls)
    gt = {"version": "VERSION 1.3", "taxonomy": [], "database": db}

    def proposals_for(vid, n):
        dur, segs, _ = gt_segs[vid]
        out = []
        n_near = n // 2
        for k in range(n):
            if k < n_near:
                s0, e0 = segs[int(rng.integers(len(segs)))]
                jit = (e0 - s0) * 0.3
                s = max(0.0, s0 + float(rng.normal(0, jit)))
                e = min(dur, e0 + float(rng.normal(0, jit)))
                if e <= s:
                    e = min(dur, s + 1.0)
                sc = float(rng.beta(4, 2))
            else:
                a, b = sorted(rng.uniform(0, dur, 2).tolist())
                s, e = a, max(b, a + 0.5)
                sc = float(rng.beta(2, 4))
            out.append(([round(s, 2), round(e, 2)], round(sc, 4)))
        return out

    pred_vids = [v for i, v in enumerate(vids) if i % 97 != 5]  # a few videos without output
    props = {"version": "VERSION 1.3", "external_data": {}, "results": {}}
    dets = {"version": "VERSION 1.3", "external_data": {}, "results": {}}
    for vid in pred_vids:
        props["results"][vid] = [{"segment": s, "score": sc}
                                 for s, sc in proposals_for(vid, props_per_video)]
        _, _, cls = gt_segs[vid]
        top = list(cls) + [int(c) for c in rng.integers(n_classes, size=2)]
        cls_scores = np.sort(rng.dirichlet(np.ones(len(top)) * 0.5))[::-1]
        half = max(1, dets_per_video // 2)
        lst = []
        for seg, sc in proposals_for(vid, half):
            for ci in range(2):
                lst.append({"segment": seg, "score": round(sc * float(cls_scores[ci]), 4),
                            "label": names[top[ci]]})
        dets["results"][vid] = lst[:dets_per_video]
    return gt, props, dets


# --------------------------------------------------------------------------------------------
def main(argv=None):
    from torch.utils.benchmark import Timer

    from shared.metrics.activitynet import evaluate_proposals
    from shared.metrics.activitynet_detection import evaluate_detections

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=2000)
    p.add_argument("--classes", type=int, default=200)
    p.add_argument("--dets-per-video", type=int, default=100)
    p.add_argument("--props-per-video", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="300 videos, 50 classes")
    p.add_argument("--skip-reference", action="store_true")
    a = p.parse_args(argv)
    if a.quick:
        a.videos, a.classes = 300, 50
    t = time.perf_counter()
    gt, props, dets = make_case(a.videos, a.classes, a.dets_per_video, a.props_per_video,
                                seed=a.seed)
    n_det = sum(len(v) for v in dets["results"].values())
    n_prop = sum(len(v) for v in props["results"].values())
    print(f"case: {a.videos} validation videos, {a.classes} classes, {n_det} detections, "
          f"{n_prop} proposals (generated in {time.perf_counter() - t:.1f} s)")

    def timed(fn, *a, **kw):
        """(result, median seconds per call): torch.utils.benchmark's adaptive timing (the
        evaluators are numpy; the Timer gives the harness of the repository's torch benchmarks)."""
        m = Timer("fn(*a, **kw)", globals={"fn": fn, "a": a, "kw": kw}).blocked_autorange(min_run_time=2.0)
        return fn(*a, **kw), m.median

    def once(fn, *a, **kw):
        """(result, seconds) of one call: the reference loops take minutes, too long to repeat."""
        t0 = time.perf_counter()
        r = fn(*a, **kw)
        return r, time.perf_counter() - t0

    res_d, t_fast_d = timed(evaluate_detections, gt, dets)
    res_p, t_fast_p = timed(evaluate_proposals, gt, props)
    print(f"detections  vectorised: {t_fast_d:7.3f} s   average mAP {res_d['mAP']:.6f}")
    print(f"proposals   vectorised: {t_fast_p:7.3f} s   AUC {res_p['AUC']:.6f} "
          f"AR@100 {res_p['AR@100']:.6f}")
    if a.skip_reference:
        return 0
    (ap_ref, classes), t_ref_d = once(reference_detection, gt, dets)
    assert classes == res_d["classes"]
    (rec_ref, avg_ref, ppv_ref), t_ref_p = once(reference_proposals, gt, props)
    auc_ref = 100.0 * float(np.trapezoid(avg_ref, ppv_ref)) / ppv_ref[-1]
    d_ap = float(np.abs(ap_ref - res_d["ap"]).max())
    d_rec = float(np.abs(rec_ref - res_p["recall"]).max())
    d_auc = abs(auc_ref - res_p["AUC"])
    print(f"detections  reference : {t_ref_d:7.3f} s   ratio {t_ref_d / t_fast_d:6.1f}x   "
          f"max |dAP| {d_ap:.2e}")
    print(f"proposals   reference : {t_ref_p:7.3f} s   ratio {t_ref_p / t_fast_p:6.1f}x   "
          f"max |drecall| {d_rec:.2e}  |dAUC| {d_auc:.2e}")
    print("for scale: the official pandas evaluators take 88-181 s (detection) and ~8 s "
          "(proposals) on 2,000 videos / ~200k predictions on 2 cores")
    ok = d_ap <= 1e-9 and d_rec <= 1e-9 and d_auc <= 1e-9
    print("outputs equal (<= 1e-9):", ok)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
