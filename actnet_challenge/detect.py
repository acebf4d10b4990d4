"""Detection assembly: proposals x video-level classes -> the official detection JSON.

BSN/BMN's recipe (never released as code): for each video take the top-k classes of its
video-level scores (k = 2); each proposal becomes k detections with score
proposal_score^a x class_score^b (a = b = 1: the plain product). Optionally per-class Gaussian
Soft-NMS; optionally at most M detections per video (default: no cap, all k x proposals, as the
official evaluator takes them). The baseline that mmaction2 ships (and that falls below the
papers) gives every proposal the video's top-1 class with its proposal score unchanged.

    python detect.py --proposals fused.json --video-scores cls.json [--top-k-classes 2]
                     --gt activity_net.v1-3.min.json --out detections.json
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from actnet_challenge.ensemble import gaussian_soft_nms
from shared.formats.activitynet import (
    detection_submission,
    read_classification_json,
    read_proposal_json,
    write_submission,
)
from shared.metrics.activitynet_detection import evaluate_detections

__all__ = ["assemble_detections", "top1_label_baseline", "detection_metrics"]


def _top_classes(scores: list[dict], k: int) -> list[tuple[str, float]]:
    ranked = sorted(((d["label"], float(d["score"])) for d in scores), key=lambda x: -x[1])
    return ranked[:k]


def assemble_detections(proposals, video_scores, top_k_classes: int = 2, proposal_exponent: float = 1.0,
                        class_exponent: float = 1.0, per_class_nms: bool = False, sigma: float = 0.4,
                        max_detections: int = 0) -> dict:
    """Fuse a proposal submission with video-level class scores into a detection submission.
    Videos without class scores get no detections (and count as misses in the evaluation).
    ``max_detections`` > 0 keeps that many per video, best first (0: all)."""
    props = read_proposal_json(proposals)
    classes = read_classification_json(video_scores)
    results = {}
    missing = 0
    for vid, plist in props.items():
        top = _top_classes(classes.get(vid, []), top_k_classes)
        if not top:
            missing += int(bool(plist))
            results[vid] = []
            continue
        seg = np.array([p["segment"] for p in plist], dtype=np.float64).reshape(-1, 2)
        psc = np.array([p["score"] for p in plist], dtype=np.float64)
        dets = []
        for label, csc in top:
            s = np.power(np.clip(psc, 0, None), proposal_exponent) * (max(csc, 0.0) ** class_exponent)
            sg = seg
            if per_class_nms and len(s):
                sg, s = gaussian_soft_nms(seg, s, sigma=sigma, top_k=max_detections or len(s))
            dets.extend((float(a), float(b), float(c), label) for (a, b), c in zip(sg, s))
        dets.sort(key=lambda d: -d[2])
        if max_detections > 0:
            dets = dets[:max_detections]
        results[vid] = [{"segment": [a, b], "score": c, "label": lab} for a, b, c, lab in dets]
    return detection_submission(results, external_data={
        "used": False, "details": f"top-{top_k_classes} classes x proposals; {missing} videos without class scores"})


def top1_label_baseline(proposals, video_scores, max_detections: int = 0) -> dict:
    """Every proposal gets its video's top-1 class, score unchanged (mmaction2's BMN evaluation)."""
    return assemble_detections(proposals, video_scores, top_k_classes=1, class_exponent=0.0,
                               max_detections=max_detections)


def detection_metrics(gt, detections, subset: str = "validation") -> dict:
    """mAP@0.5, @0.75, @0.95 and the average over 0.5:0.05:0.95, in percent."""
    r = evaluate_detections(gt, detections, subset=subset)
    per = np.asarray(r["mAP_per_tiou"]) * 100
    return {"mAP@0.5": float(per[0]), "mAP@0.75": float(per[5]), "mAP@0.95": float(per[9]),
            "mAP": float(r["mAP"] * 100)}


def detection_table(named: dict, scored_on: str = "") -> str:
    """Markdown table of mAP@0.5/0.75/0.95 and the average; ``scored_on`` (which videos) under it."""
    keys = ["mAP@0.5", "mAP@0.75", "mAP@0.95", "mAP"]
    lines = ["| detections | " + " | ".join(keys[:-1]) + " | average mAP |", "|---" * 5 + "|"]
    for name, m in named.items():
        lines.append(f"| {name} | " + " | ".join(f"{m[k]:.2f}" for k in keys) + " |")
    if scored_on:
        lines.append(f"\nscored on {scored_on}")
    return "\n".join(lines)


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("detection assembly", add_help=add_help)
    p.add_argument("--proposals", required=True, help="proposal submission JSON")
    p.add_argument("--video-scores", required=True, help='video-level scores {"results": {vid: [{"label","score"}]}}')
    p.add_argument("--top-k-classes", type=int, default=2, help="classes per video (BSN/BMN: 2)")
    p.add_argument("--proposal-exponent", type=float, default=1.0, help="a in score = p^a * c^b")
    p.add_argument("--class-exponent", type=float, default=1.0, help="b in score = p^a * c^b")
    p.add_argument("--per-class-nms", action="store_true", help="Gaussian Soft-NMS per class")
    p.add_argument("--max-detections", type=int, default=0, help="detections kept per video (0 = all)")
    p.add_argument("--gt", default="", help="ground truth: evaluate (and the top-1-label baseline)")
    p.add_argument("--subset", default="validation", help="evaluated subset")
    p.add_argument("--out", default="", help="write the detection JSON here")
    return p


def main(argv=None):
    a = get_args_parser().parse_args(argv)
    dets = assemble_detections(a.proposals, a.video_scores, a.top_k_classes, a.proposal_exponent,
                               a.class_exponent, a.per_class_nms, max_detections=a.max_detections)
    if a.out:
        write_submission(dets, a.out)
        print(f"detections: {a.out}")
    if a.gt:
        named = {f"fused (top-{a.top_k_classes})": detection_metrics(a.gt, dets, a.subset),
                 "top-1 label baseline": detection_metrics(a.gt, top1_label_baseline(a.proposals, a.video_scores,
                                                                                   a.max_detections), a.subset)}
        print(detection_table(named))
    return dets


if __name__ == "__main__":
    main(sys.argv[1:])
