"""BSN++ inference and evaluation: checkpoint -> proposals in the official ActivityNet JSON ->
AR@AN / AUC with the official protocol (shared.metrics.activitynet) -> results.json + AR-AN plots,
beside the two trivial baselines of ``bsnpp.baselines`` (random proposals, the training prior).

    python eval.py [--config configs/toy.yaml] [--checkpoint runs/.../checkpoint_last.pt]
                   [--data-root D] [--out-dir DIR] [--amp]
    python eval.py --proposals FILE.json [--config ...]     # score any proposal file the same way

Without --checkpoint the last checkpoint of the newest run of the same config is used; results go
to `<run>/eval_<checkpoint>/` so the training run's own results.json stays as it was. Evaluation
runs in fp32 unless --amp. Under torchrun each rank infers and post-processes its shard; the
proposals (seconds, compact) are gathered on every rank, every rank scores them (identical
numbers, no further collective), and rank 0 writes the files at the end.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from bsnpp import build
from bsnpp.baselines import random_proposals
from bsnpp.engine import infer
from bsnpp.postprocess import generate_candidates, soft_nms
from shared import checkpoint as ckpt_lib
from shared import config, dist, run
from shared.device import resolve_device, use_amp
from shared.formats.activitynet import proposal_submission, write_submission
from shared.log import setup_logging
from shared.metrics.activitynet import evaluate_proposals, parse_tiou_thresholds
from shared.metrics.plots import plot_ar_an, plot_ar_an_compare

log = logging.getLogger("bsnpp")
MODEL_KEYS = ("num_sample", "num_sample_perbin", "prop_boundary_ratio", "hidden_1d", "hidden_2d",
              "hidden_3d", "cbg", "cbg_width", "bidirectional", "prb", "bm_impl", "temporal_scale", "window")
AR_KEYS = ("AR@1", "AR@5", "AR@10", "AR@50", "AR@100", "AR@200", "AR@500", "AR@1000", "AUC")


def _nms(props: np.ndarray, args) -> np.ndarray:
    return soft_nms(props, alpha=args.soft_nms_alpha, low=args.soft_nms_low, high=args.soft_nms_high,
                    top_k=args.top_k)


def postprocess_split(outputs: dict, dataset, args) -> dict[str, np.ndarray]:
    """Per-item scores ``{item: {start, end, cls, reg}}`` -> ``{video_id: [K, 3]}`` (start s,
    end s, score), the videos in dataset order.

    Per item: candidates (BMN's boundary filter and score) and Gaussian Soft-NMS in the item's
    normalised time, then seconds (``dataset.to_video_time``: a whole video, or a THUMOS14
    window placed back in its video). A video made of several windows gets one more Soft-NMS
    over the union of its windows' proposals (in the video's normalised time, where Soft-NMS's
    width-adaptive threshold is defined).
    """
    by_video = defaultdict(list)
    for idx in sorted(outputs):
        o = outputs[idx]
        cand = generate_candidates(o["start"], o["end"], o["cls"], o["reg"], score_mode=args.score_mode,
                                   boundary_filter=args.boundary_filter)
        props = _nms(cand[:, :3], args) if len(cand) else np.zeros((0, 3))
        secs = dataset.to_video_time(idx, props[:, :2]) if len(props) else np.zeros((0, 2))
        by_video[dataset.item_info(idx)["video_id"]].append(np.column_stack([secs, props[:, 2]]))
    durations = {r.video_id: r.duration for r in dataset.records}
    result = {}
    for vid, parts in by_video.items():
        props = np.concatenate(parts, 0)
        if len(parts) > 1 and len(props):
            dur = max(durations[vid], 1e-9)
            merged = _nms(np.column_stack([props[:, 0] / dur, props[:, 1] / dur, props[:, 2]]), args)
            props = np.column_stack([merged[:, :2] * dur, merged[:, 2]])
        result[vid] = props
    return result


def proposals_for_split(model, dataset, device, args, amp: bool = False) -> dict[str, np.ndarray]:
    """Infer this rank's shard, post-process it, gather: ``{video_id: [K, 3]}`` on every rank."""
    sampler = dist.build_sampler(dataset, shuffle=False)
    loader = DataLoader(dataset, batch_size=dist.per_process_batch(args.batch_size), sampler=sampler,
                        num_workers=args.workers)
    local = postprocess_split(infer(model, loader, device, amp=amp), dataset, args)
    merged = {}
    for part in dist.all_gather_object(local):  # padded repeats land on the same video: identical
        merged.update(part)
    order = {r.video_id: i for i, r in enumerate(dataset.records)}
    return dict(sorted(merged.items(), key=lambda kv: order[kv[0]]))


def ground_truth_from_records(records, subset: str) -> dict:
    """An ActivityNet-1.3 ground-truth dict of the evaluated videos (those with usable features,
    as BSN/BMN evaluate), so that any annotation source can be scored by the official protocol."""
    db = {}
    for r in records:
        db[r.video_id] = {"subset": subset, "duration": r.duration,
                          "annotations": [{"segment": [float(s), float(e)], "label": str(lab)}
                                          for s, e, lab in r.segments]}
    return {"version": "VERSION 1.3", "taxonomy": [], "database": db}


def score(gt: dict, submission, args) -> tuple[dict, dict]:
    """(scalar metrics, the evaluator's full result): AR@k in percent (as BSN/BMN tables print
    them; the official evaluator returns fractions) and the AUC (already in percent)."""
    res = evaluate_proposals(gt, submission, subset=args.val_subset, max_avg_nr_proposals=args.max_avg_nr_proposals,
                             tiou_thresholds=parse_tiou_thresholds(args.tiou_thresholds))
    metrics = {k: 100.0 * float(v) for k, v in res.items() if k.startswith("AR@")}
    metrics["AUC"] = float(res["AUC"])
    return metrics, res


def evaluate_split(model, data: dict, device, args, amp: bool = False) -> dict:
    """Infer, post-process, score; on every rank ``{"metrics", "result", "submission"}``."""
    t0 = time.perf_counter()
    submission = proposal_submission(proposals_for_split(model, data["infer"], device, args, amp))
    metrics, res = score(ground_truth_from_records(data["val_records"], args.val_subset), submission, args)
    metrics["seconds"] = time.perf_counter() - t0
    metrics["videos"] = len(data["val_records"])
    return {"metrics": metrics, "result": res, "submission": submission}


def evaluate_baselines(data: dict, prior: dict | None, args) -> dict:
    """{"random": (metrics, result), "prior": (metrics, result)} on the evaluated videos (prior
    only when its maps are given: they come from the training set). Deterministic; no collective."""
    gt = ground_truth_from_records(data["val_records"], args.val_subset)
    out = {"random": score(gt, proposal_submission(random_proposals(gt, args.max_avg_nr_proposals, args.seed)), args)}
    if prior is not None:
        outputs = {i: prior for i in range(len(data["infer"]))}
        out["prior"] = score(gt, proposal_submission(postprocess_split(outputs, data["infer"], args)), args)
    return out


def write_outputs(out_dir: Path, evaluation: dict, baselines: dict, name: str, args, extra: dict) -> dict:
    """Rank 0: proposals.json, ar_an.png (ours), ar_an_baselines.png (ours beside the baselines)
    and results.json; returns what results.json holds."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if evaluation.get("submission") is not None:
        write_submission(evaluation["submission"], out_dir / "proposals.json")
    plot_ar_an(evaluation["result"], out_dir / "ar_an.png", title=f"{name} ({args.val_subset})")
    curves = {name: evaluation["result"], **{f"{k} baseline": v[1] for k, v in baselines.items()}}
    plot_ar_an_compare(curves, out_dir / "ar_an_baselines.png", title=f"AR-AN ({args.val_subset})")
    results = {"dataset": "thumos14" if args.window else "anet", "config": config.config_name(args),
               "metrics": evaluation["metrics"], **{f"baseline_{k}": v[0] for k, v in baselines.items()},
               "curves": {k: _curve(r) for k, r in [("ours", evaluation["result"]),
                                                    *((f"{b} baseline", v[1]) for b, v in baselines.items())]},
               **extra}
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(format_metrics(evaluation["metrics"], {k: v[0] for k, v in baselines.items()}, name))
    print(f"results: {out_dir / 'results.json'}\nAR-AN plots: {out_dir / 'ar_an.png'}, {out_dir / 'ar_an_baselines.png'}")
    return results


def _curve(res: dict) -> dict:
    """The AR-AN curve of an evaluator result, as plain lists (results.json; plots redrawn from it)."""
    return {"proposals_per_video": [float(x) for x in res["proposals_per_video"]],
            "avg_recall": [float(x) for x in res["avg_recall"]], "AUC": float(res["AUC"])}


def format_metrics(metrics: dict, baselines: dict | None = None, name: str = "ours") -> str:
    keys = [k for k in AR_KEYS if k in metrics]
    lines = ["| | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|",
             f"| {name} | " + " | ".join(f"{metrics[k]:.2f}" for k in keys) + " |"]
    for bname, m in (baselines or {}).items():
        lines.append(f"| {bname} baseline | " + " | ".join(f"{m.get(k, float('nan')):.2f}" for k in keys) + " |")
    return "\n".join(lines)


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("BSN++ evaluation", add_help=add_help)
    config.add_runtime_args(p, toy_config=build.TOY_CONFIG, train=False)
    build.add_data_args(p)
    build.add_model_args(p)
    build.add_loss_args(p)
    build.add_post_args(p)
    build.add_optim_args(p)  # accepted so that training configs load; --batch-size is used
    p.add_argument("--checkpoint", default="", help="checkpoint file; default: checkpoint_last.pt of the newest run "
                   "of this config (checkpoint_best.pt is chosen on the evaluated split: optimistic)")
    p.add_argument("--proposals", default="", help="score this proposal file (ActivityNet JSON, seconds) instead of "
                   "a checkpoint's proposals, on the same videos and protocol")
    p.add_argument("--out-dir", default="", help="where results go; default: <run>/eval_<checkpoint name>/ "
                   "(with --proposals: beside the file)")
    return p


def main(args):
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    setup_logging()
    prior, extra = None, {}
    if args.proposals:
        path = Path(args.proposals)
        if not path.is_file():
            raise FileNotFoundError(f"--proposals {path}: no such file")
        data = build.build_data(args, splits=("val",))
        metrics, res = score(ground_truth_from_records(data["val_records"], args.val_subset), path, args)
        evaluation = {"metrics": {**metrics, "videos": len(data["val_records"])}, "result": res, "submission": None}
        out_dir, extra = Path(args.out_dir) if args.out_dir else path.parent, {"proposals": str(path)}
        name = path.stem
    else:
        path = run.find_checkpoint(args, "bsnpp", hint="train first (make bsnpp-train) or pass --checkpoint")
        ckpt = ckpt_lib.load_checkpoint(path)
        for k in MODEL_KEYS:  # the architecture is the checkpoint's, whatever the flags say
            if k in ckpt.get("args", {}):
                setattr(args, k, ckpt["args"][k])
        data = build.build_data(args, splits=("val",))
        model = build.build_model(args, data["channels"]).to(device)
        model.load_state_dict(ckpt["model"])
        evaluation = evaluate_split(model, data, device, args, amp=use_amp(args, device))
        prior = ckpt.get("prior")
        out_dir = Path(args.out_dir) if args.out_dir else path.parent / f"eval_{path.stem}"
        extra, name = {"checkpoint": str(path), "epoch": ckpt.get("epoch")}, f"ours ({config.config_name(args)})"
    baselines = evaluate_baselines(data, prior, args)
    if dist.is_main():
        write_outputs(out_dir, evaluation, baselines, name, args, extra)
    dist.cleanup()
    return evaluation["metrics"]


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
