"""The detection loop, written out: torchvision's recipe (SGD, linear warm-up, step decay), one
training epoch, and the evaluation (sharded inference -> COCO results -> COCOeval's numbers via
shared.metrics.detection.coco_evaluate)."""
from __future__ import annotations

import numpy as np
import torch

from shared import dist
from shared.device import autocast
from shared.finite import check_finite
from shared.log import MetricLogger
from shared.metrics.detection import COCO_STAT_NAMES, coco_evaluate

__all__ = ["lr_factor", "train_one_epoch", "predict", "to_coco_results", "evaluate"]


def lr_factor(args, epoch: int, it: int, iters: int) -> float:
    """torchvision's detection schedule: x gamma at each of `--lr-steps` (epochs), and during the
    first `--warmup-iters` iterations of epoch 0 a linear ramp from `--warmup-factor`."""
    f = args.lr_gamma ** sum(epoch >= s for s in args.lr_steps)
    if epoch == 0 and it < args.warmup_iters:
        alpha = it / max(1, min(args.warmup_iters, iters))
        f *= args.warmup_factor * (1 - alpha) + alpha
    return f


def train_one_epoch(model, loader, optimizer, device, epoch: int, args, amp: bool) -> dict:
    """Forward (loss dict), sum, finiteness check naming the bad term, backward, step."""
    model.train()
    meters = MetricLogger()
    iters = len(loader)
    for it, (images, targets) in enumerate(meters.log_every(loader, args.print_freq, f"det epoch {epoch}")):
        lr = args.lr * lr_factor(args, epoch, it, iters)
        for g in optimizer.param_groups:
            g["lr"] = lr
        images = [im.to(device, non_blocking=True) for im in images]
        targets = [{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in t.items()} for t in targets]
        with autocast(device, amp):
            losses = model(images, targets)
        losses = {k: v.float() for k, v in losses.items()}
        total = sum(losses.values())
        check_finite(losses, f"epoch {epoch} iteration {it}", total)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        meters.update(loss=total.detach(), lr=lr, **{k: v.detach() for k, v in losses.items()})
    return dist.reduce_dict(meters.averages())


@torch.no_grad()
def predict(model, loader, device, amp: bool = False) -> list:
    """Compact per-image results of this rank's shard: (image_id, boxes xywh float32 [K, 4],
    scores float32 [K], labels int64 [K]) in original image coordinates."""
    model.eval()
    out = []
    for images, targets in MetricLogger().log_every(loader, 20, "det eval"):
        images = [im.to(device, non_blocking=True) for im in images]
        with autocast(device, amp):
            dets = model(images)
        for d, t in zip(dets, targets):
            b = d["boxes"].float().cpu().numpy()
            b[:, 2:] -= b[:, :2]
            out.append((int(t["image_id"]), b.astype(np.float32), d["scores"].float().cpu().numpy(),
                        d["labels"].cpu().numpy()))
    return out


def to_coco_results(results: list, split) -> list[dict]:
    """COCO results format: [{image_id, category_id, bbox [x, y, w, h], score}]."""
    dets = []
    for image_id, boxes, scores, labels in results:
        cats = split.category_id(labels)
        for b, s, c in zip(boxes.tolist(), scores.tolist(), cats.tolist()):
            dets.append({"image_id": image_id, "category_id": int(c), "bbox": [round(v, 2) for v in b],
                         "score": round(float(s), 5)})
    return dets


def evaluate(model, loader, split, device, amp: bool = False):
    """(stats in percent {AP, AP50, ..., APl} or None off rank 0, detections list on rank 0).
    Each rank predicts its shard; the compact results are gathered and scored on rank 0."""
    local = predict(model, loader, device, amp)
    gathered = dist.all_gather_object(local)
    if not dist.is_main():
        return None, None
    results = sorted((r for part in gathered for r in part), key=lambda r: r[0])
    dets = to_coco_results(results, split)
    ev = coco_evaluate(split.gt, dets)
    stats = {k: 100.0 * max(ev[k], 0.0) if ev[k] >= 0 else -1.0 for k in COCO_STAT_NAMES[:6]}
    return stats, dets
