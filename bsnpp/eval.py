"""BSN++ inference and evaluation: checkpoint -> proposals in the official ActivityNet JSON ->
AR@AN / AUC with the official protocol (shared.metrics.activitynet) -> results.json + AR-AN plot.

    python eval.py [--config configs/toy.yaml] [--checkpoint runs/.../checkpoint_last.pt]
                   [--data-root D] [--out-dir DIR]

Without --checkpoint the last checkpoint of the newest run of the same config is used; results go
to `<run>/eval_<checkpoint>/` so the training run's own results.json stays as it was. Under torchrun each rank infers
and post-processes its shard; rank 0 gathers the proposals, evaluates and writes.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from bsnpp import build
from bsnpp.engine import infer
from bsnpp.postprocess import generate_candidates, proposals_to_json, soft_nms
from shared import checkpoint as ckpt_lib
from shared import config, dist
from shared.device import resolve_device
from shared.log import setup_logging
from shared.metrics.activitynet import evaluate_proposals, parse_tiou_thresholds, plot_ar_an

log = logging.getLogger("bsnpp")
MODEL_KEYS = ("num_sample", "num_sample_perbin", "prop_boundary_ratio", "hidden_1d", "hidden_2d",
              "hidden_3d", "cbg", "cbg_width", "bidirectional", "prb", "bm_impl", "temporal_scale", "window")


def _nms(props: np.ndarray, args) -> np.ndarray:
    return soft_nms(props, alpha=args.soft_nms_alpha, low=args.soft_nms_low, high=args.soft_nms_high,
                    top_k=args.top_k)


def proposals_for_split(model, dataset, device, args, amp: bool = True) -> dict | None:
    """{video_id: [K, 3] (start s, end s, score)} on rank 0 (None elsewhere).

    Per item: candidates (BMN's boundary filter and score) and Gaussian Soft-NMS; an item is a
    whole video (ActivityNet) or a window (THUMOS14), mapped back to video time. Videos made of
    several windows get one more Soft-NMS over the union of their windows' proposals.
    """
    sampler = dist.build_sampler(dataset, shuffle=False)
    loader = DataLoader(dataset, batch_size=args.batch_size, sampler=sampler, num_workers=args.workers)
    outputs = infer(model, loader, device, amp=amp)
    local = {}
    for idx, o in outputs.items():
        cand = generate_candidates(o["start"], o["end"], o["cls"], o["reg"], score_mode=args.score_mode,
                                   boundary_filter=args.boundary_filter)
        props = _nms(cand[:, :3], args) if len(cand) else np.zeros((0, 3))
        secs = dataset.to_video_time(idx, props[:, :2]) if len(props) else np.zeros((0, 2))
        local[idx] = np.concatenate([secs, props[:, 2:3]], 1)
    gathered = dist.all_gather_object(local)
    if not dist.is_main():
        return None
    per_item = {}
    for part in gathered:
        per_item.update(part)
    by_video = defaultdict(list)
    for idx in sorted(per_item):
        by_video[dataset.item_info(idx)["video_id"]].append(per_item[idx])
    result = {}
    for vid, parts in by_video.items():
        props = np.concatenate(parts, 0)
        if len(parts) > 1 and len(props):
            dur = max(next(r.duration for r in dataset.records if r.video_id == vid), 1e-9)
            merged = _nms(np.column_stack([props[:, 0] / dur, props[:, 1] / dur, props[:, 2]]), args)
            props = np.column_stack([merged[:, 0] * dur, merged[:, 1] * dur, merged[:, 2]])
        result[vid] = props
    return result


def ground_truth_from_records(records, subset: str) -> dict:
    """An ActivityNet-1.3 ground-truth dict of the evaluated videos (those with usable features,
    as BSN/BMN evaluate), so that any annotation source can be scored by the official protocol."""
    db = {}
    for r in records:
        db[r.video_id] = {"subset": subset, "duration": r.duration,
                          "annotations": [{"segment": [float(s), float(e)], "label": str(lab)}
                                          for s, e, lab in r.segments]}
    return {"version": "VERSION 1.3", "taxonomy": [], "database": db}


def random_baseline(gt: dict, n: int = 100, seed: int = 0) -> dict:
    """n uniformly random proposals per video (start and end uniform in the video, random
    scores): the trivial baseline a proposal generator must beat (ActivityNet: AUC 44.88)."""
    rng = np.random.default_rng(seed)
    results = {}
    for vid, v in gt["database"].items():
        a, b = rng.uniform(0, v["duration"], (2, n))
        results[vid] = [{"segment": [float(s), float(e)], "score": float(sc)}
                        for s, e, sc in zip(np.minimum(a, b), np.maximum(a, b), rng.uniform(size=n))]
    return {"version": "VERSION 1.3", "results": results, "external_data": {}}


def _scalar_metrics(res: dict) -> dict:
    """AR@k in percent (as BSN/BMN tables print them; the official evaluator returns fractions)
    and the AUC (already in percent)."""
    out = {k: 100.0 * float(v) for k, v in res.items() if k.startswith("AR@")}
    out["AUC"] = float(res["AUC"])
    return out


def evaluate_split(model, data: dict, device, args, out_dir: Path | None, amp: bool = True) -> dict | None:
    """Infer, post-process, write `proposals.json`, evaluate; rank 0 returns the metrics."""
    t0 = time.perf_counter()
    props = proposals_for_split(model, data["infer"], device, args, amp)
    if not dist.is_main():
        return None
    durations = {r.video_id: r.duration for r in data["val_records"]}
    normalised = {v: np.column_stack([p[:, 0] / max(durations[v], 1e-9), p[:, 1] / max(durations[v], 1e-9), p[:, 2]])
                  for v, p in props.items()}
    submission = proposals_to_json(normalised, durations)
    gt = ground_truth_from_records(data["val_records"], args.val_subset)
    thresholds = parse_tiou_thresholds(args.tiou_thresholds)
    res = evaluate_proposals(gt, submission, subset=args.val_subset,
                             max_avg_nr_proposals=args.max_avg_nr_proposals, tiou_thresholds=thresholds)
    metrics = _scalar_metrics(res)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "proposals.json").write_text(json.dumps(submission))
        plot_ar_an(res, out_dir / "ar_an.png", title=f"BSN++ ({args.val_subset})")
    metrics["seconds"] = time.perf_counter() - t0
    metrics["videos"] = len(durations)
    return metrics


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("BSN++ evaluation", add_help=add_help)
    config.add_runtime_args(p)
    build.add_data_args(p)
    build.add_model_args(p)
    build.add_loss_args(p)
    build.add_post_args(p)
    build.add_optim_args(p)  # accepted so that training configs load; --batch-size is used
    p.add_argument("--checkpoint", default="", help="checkpoint file; default: checkpoint_last.pt of the newest run "
                   "of this config (checkpoint_best.pt is chosen on the evaluated split: optimistic)")
    p.add_argument("--out-dir", default="", help="where results go; default: <run>/eval_<checkpoint name>/")
    return p


def find_checkpoint(args) -> Path:
    if args.checkpoint:
        return Path(args.checkpoint)
    found = config.newest_run_checkpoint(args.output_dir, "bsnpp", config.config_name(args))
    if found is None:
        raise FileNotFoundError(f"no checkpoint under {Path(args.output_dir) / 'bsnpp' / config.config_name(args)}: "
                                "train first (make bsnpp-train) or pass --checkpoint")
    return found


def main(args):
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    setup_logging()
    path = find_checkpoint(args)
    ckpt = ckpt_lib.load_checkpoint(path)
    for k in MODEL_KEYS:  # the architecture is the checkpoint's, whatever the flags say
        if k in ckpt.get("args", {}):
            setattr(args, k, ckpt["args"][k])
    data = build.build_data(args, splits=("val",))
    model = build.build_model(args, data["channels"]).to(device)
    model.load_state_dict(ckpt["model"])
    out_dir = Path(args.out_dir) if args.out_dir else path.parent / f"eval_{path.stem}"
    metrics = evaluate_split(model, data, device, args, out_dir, amp=args.amp)
    if dist.is_main():
        baseline = _scalar_metrics(evaluate_proposals(
            ground_truth_from_records(data["val_records"], args.val_subset),
            random_baseline(ground_truth_from_records(data["val_records"], args.val_subset)),
            subset=args.val_subset, max_avg_nr_proposals=args.max_avg_nr_proposals,
            tiou_thresholds=parse_tiou_thresholds(args.tiou_thresholds)))
        results = {"dataset": "thumos14" if args.window else "anet", "config": config.config_name(args),
                   "checkpoint": str(path), "epoch": ckpt.get("epoch"), "metrics": metrics,
                   "baseline_random": baseline}
        (out_dir / "results.json").write_text(json.dumps(results, indent=2))
        print(format_metrics(metrics, baseline, f"ours ({config.config_name(args)})"))
        print(f"results: {out_dir / 'results.json'}\nproposals: {out_dir / 'proposals.json'}\n"
              f"AR-AN plot: {out_dir / 'ar_an.png'}")
    dist.cleanup()
    return metrics


def format_metrics(metrics: dict, baseline: dict | None = None, name: str = "ours") -> str:
    keys = [k for k in ("AR@1", "AR@5", "AR@10", "AR@50", "AR@100", "AR@200", "AR@500", "AR@1000", "AUC")
            if k in metrics]
    lines = ["| | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|",
             f"| {name} | " + " | ".join(f"{metrics[k]:.2f}" for k in keys) + " |"]
    if baseline:
        lines.append("| random proposals | " + " | ".join(f"{baseline.get(k, float('nan')):.2f}" for k in keys) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
