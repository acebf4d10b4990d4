"""Train the video-level classifier on snippet features (the formats bsnpp reads: a CSV folder or
an HDF5 file) and write video-level scores in the shape of the CUHK classification file:
{"results": {video_id: [{"label", "score"}, ...]}} (every class, best first).

    cd actnet_challenge && python train_classifier.py          # toy data (bsnpp's; configs/toy.yaml implied)
    python train_classifier.py --config configs/activitynet.yaml --data-root /datasets/activitynet

A run of its own is a sub-run of the pipeline's config: runs/actnet_challenge/<config>-classifier/
<timestamp>/ (train.py trains the same classifier inside its own run folder). Prints top-1 /
top-3 accuracy and video mAP on the validation subset (scored in fp32 unless --eval-amp).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from actnet_challenge import build
from actnet_challenge.classifier import VideoClassifier, VideoFeatureDataset, topk_accuracy
from shared import checkpoint as ckpt_lib
from shared import config, dist, log, run
from shared.device import autocast, resolve_device, use_amp
from shared.formats.activitynet import read_ground_truth, write_classification_json
from shared.metrics.classification import mean_average_precision

logger = logging.getLogger("actnet_challenge")


def _split(videos, subset, store):
    ids = [v for v, info in videos.items() if info["subset"] == subset]
    have = [v for v in ids if store.has(v)]
    if len(have) < len(ids):
        logger.warning("%s: %d of %d videos have no features (skipped), first: %s", subset, len(ids) - len(have),
                       len(ids), ", ".join(sorted(set(ids) - set(have))[:5]))
    return have


@torch.no_grad()
def predict(model, loader, device, amp: bool = False):
    model.eval()
    scores, labels, index = [], [], []
    for b in loader:
        with autocast(device, amp):
            logits = model(b["features"].to(device))
        scores.append(torch.sigmoid(logits.float()).cpu().numpy())
        labels.append(b["labels"].numpy())
        index.append(b["index"].numpy())
    if not scores:
        return np.zeros((0, 0)), np.zeros((0, 0)), np.zeros(0, dtype=int)
    return np.concatenate(scores), np.concatenate(labels), np.concatenate(index)


def run_classifier(args, run_dir: Path, device) -> tuple[dict, Path]:
    """Train, evaluate and write `video_scores.json` (validation videos) into run_dir (rank 0).

    Training is sharded over the processes (--cls-batch-size is the global batch); the
    validation scores are computed on every rank (a few thousand videos) and written by rank 0."""
    gt_path, store = build.resolve_data(args)
    videos, _ = read_ground_truth(gt_path)
    labels = {v: sorted({a[2] for a in info["annotations"]}) for v, info in videos.items()}
    classes = sorted({c for v in labels.values() for c in v})
    train_ids = [v for v in _split(videos, args.train_subset, store) if labels[v]]
    val_ids = _split(videos, args.val_subset, store)
    if not train_ids:
        raise ValueError(f"{gt_path}: no {args.train_subset} video with annotations and features")
    train_set = VideoFeatureDataset(train_ids, labels, classes, store, args.temporal_size)
    val_set = VideoFeatureDataset(val_ids, labels, classes, store, args.temporal_size)
    in_ch = train_set[0]["features"].shape[0]
    sampler = dist.build_sampler(train_set, shuffle=True, seed=args.seed)
    batch = dist.per_process_batch(args.cls_batch_size, "--cls-batch-size")
    loader = DataLoader(train_set, batch_size=batch, sampler=sampler, num_workers=0)
    val_loader = DataLoader(val_set, batch_size=batch, num_workers=0)
    model = dist.wrap_model(VideoClassifier(in_ch, len(classes), args.hidden, args.pooling, args.dropout), device)
    opt = torch.optim.Adam(model.parameters(), lr=args.cls_lr, weight_decay=args.cls_weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.cls_epochs)
    writer = log.JsonlWriter(run_dir / "classifier_metrics.jsonl")
    amp = use_amp(args, device)
    for epoch in range(args.cls_epochs):
        dist.set_epoch(sampler, epoch)
        model.train()
        meters = log.MetricLogger()
        for b in meters.log_every(loader, 10, header=f"classifier {epoch}"):
            with autocast(device, amp):
                logits = model(b["features"].to(device))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), b["labels"].to(device))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"classifier: non-finite BCE loss at epoch {epoch}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            meters.update(loss=loss.detach())
        sched.step()
        writer.write({"epoch": epoch, **dist.reduce_dict(meters.averages())})
    ckpt_lib.save_checkpoint(ckpt_lib.training_state(model, opt, sched, epoch=args.cls_epochs - 1, args=args,
                                                     classes=classes), run_dir / "classifier.pt")
    scores, y, idx = predict(dist.unwrap(model), val_loader, device, use_amp(args, device, evaluation=True))
    metrics = {"top1": topk_accuracy(scores, y, 1), "top3": topk_accuracy(scores, y, 3),
               "mAP": 100.0 * mean_average_precision(scores, y)[0] if len(scores) else float("nan"),
               "chance_top1": 100.0 / len(classes), "videos": int(len(scores))}
    out = run_dir / "video_scores.json"
    if dist.is_main():
        results = {val_set.video_ids[i]: dict(zip(classes, row.tolist())) for row, i in zip(scores, idx)}
        write_classification_json(results, out, external_data={"used": False,
                                                               "details": "actnet_challenge video classifier"})
    return metrics, out


def get_args_parser(add_help=True):
    return build.get_args_parser("ActivityNet video classifier", add_help)


def main(args):
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    run_dir, _ = run.resolve_run_dir(args, "actnet_challenge", name="classifier")
    log.setup_logging(run_dir)
    config.save_config(args, run_dir / "config.yaml")
    log.run_info(args, run_dir)
    dist.seed_everything(args.seed)
    metrics, out = run_classifier(args, run_dir, device)
    if dist.is_main():
        (run_dir / "results.json").write_text(json.dumps({"classifier": metrics}, indent=2))
        print(f"video classifier ({args.val_subset}): top-1 {metrics['top1']:.2f}  top-3 {metrics['top3']:.2f}  "
              f"mAP {metrics['mAP']:.2f}  (chance top-1 {metrics['chance_top1']:.2f})\nvideo scores: {out}")
    dist.cleanup()
    return metrics, out


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
