"""The loop, written out: one training epoch, streaming inference to ``predictions.csv`` / ``submission.csv``,
the Open Images Challenge evaluation with the paper's summaries, and a random-box baseline.

Predictions never accumulate in memory: each rank writes its images' detections to its own shard as it
goes (one CSV block per batch), and after the last collective rank 0 concatenates the shards, in rank
order, into ``predictions.csv`` (``ImageID,LabelName,Score,XMin,XMax,YMin,YMax``, the metric's input)
and ``submission.csv`` (Kaggle's ``ImageId,PredictionString``, one row per image).
"""
from __future__ import annotations

import logging
import math
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from openimages_det.data import collate
from openimages_det.oid_eval import evaluate as oid_evaluate
from openimages_det.oid_eval import per_class_ap
from shared import dist
from shared.device import autocast
from shared.finite import check_finite
from shared.log import MetricLogger

__all__ = ["train_one_epoch", "predict", "infer_to_csv", "summarize", "evaluate_predictions", "random_baseline"]
log = logging.getLogger("openimages_det")
PRED_HEADER = "ImageID,LabelName,Score,XMin,XMax,YMin,YMax"


def _to_device(images, targets, device):
    images = [im.to(device, non_blocking=True) for im in images]
    targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
    return images, targets


def train_one_epoch(model, loader, optimizer, scheduler, device, epoch: int, step: int, args, writer,
                    on_step=None) -> int:
    """One pass over ``loader``: forward under autocast, loss dict, finiteness check naming the bad term,
    backward, gradient clipping (``--clip-grad``), SGD step, per-iteration schedule. Returns the global
    step. ``on_step(step, batch_in_epoch)`` runs after each step (mid-epoch checkpoints)."""
    model.train()
    meters = MetricLogger()
    amp = getattr(args, "amp", False)
    for b, (images, targets) in enumerate(meters.log_every(loader, args.log_period, header=f"epoch {epoch}")):
        images, targets = _to_device(images, targets, device)
        for t in targets:
            t.pop("image_index", None)
        with autocast(device, amp):
            losses = model(images, targets)
        losses = {k: v.float() for k, v in losses.items()}
        total = sum(losses.values())
        check_finite(losses, f"epoch {epoch}, step {step}", total)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if args.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad)
        optimizer.step()
        scheduler.step()
        step += 1
        logged = dist.reduce_dict({**{k: float(v.detach()) for k, v in losses.items()}, "loss": float(total.detach())})
        meters.update(lr=optimizer.param_groups[0]["lr"], **logged)
        if step % args.log_period == 0:
            writer.write({"epoch": epoch, "step": step, "lr": optimizer.param_groups[0]["lr"], **logged})
        if on_step is not None:
            on_step(step, b + 1)
    return step


@torch.no_grad()
def predict(model, images: list, amp: bool = False) -> list:
    """Detections per image in that image's pixel coordinates: {boxes xyxy, scores, labels 1..C}."""
    device = next(model.parameters()).device
    model.eval()
    with autocast(device, amp):
        out = model([im.to(device) for im in images])
    return [{k: v.float() if v.is_floating_point() else v for k, v in o.items()} for o in out]


def _rows(det: dict, image_id: str, h: int, w: int, class_names) -> pd.DataFrame:
    b = det["boxes"].cpu().double().numpy()
    scale = np.array([w, h, w, h], np.float64)
    b = np.clip(b / scale, 0.0, 1.0)
    return pd.DataFrame({"ImageID": image_id, "LabelName": class_names[det["labels"].cpu().numpy() - 1],
                         "Score": det["scores"].cpu().double().numpy(), "XMin": b[:, 0], "XMax": b[:, 2],
                         "YMin": b[:, 1], "YMax": b[:, 3]})


def _prediction_string(df: pd.DataFrame) -> str:
    return " ".join(f"{lab} {s:.6g} {x0:.6g} {y0:.6g} {x1:.6g} {y1:.6g}" for lab, s, x0, y0, x1, y1 in zip(
        df["LabelName"], df["Score"], df["XMin"], df["YMin"], df["XMax"], df["YMax"]))


@torch.no_grad()
def infer_to_csv(model, dataset, device, out_dir: Path, class_names, batch_size: int = 1, amp: bool = False,
                 workers: int = 0) -> dict | None:
    """Run the detector over ``dataset`` (``data.OpenImagesImages``; each rank a strided shard) streaming
    to per-rank shards, then (rank 0, after the barrier) ``predictions.csv`` and ``submission.csv`` in
    ``out_dir``. Returns {'predictions', 'submission', 'detections', 'images', 'seconds'} on rank 0."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    shard_dir = out_dir / ".shards"
    if dist.is_main():
        shard_dir.mkdir(parents=True, exist_ok=True)
    dist.barrier()
    names = np.asarray(class_names, dtype=object)
    idx = list(range(dist.rank(), len(dataset), dist.world_size()))
    subset = torch.utils.data.Subset(dataset, idx)
    loader = torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=False, num_workers=workers,
                                         collate_fn=collate)
    n_det = 0
    pred_path = shard_dir / f"predictions.{dist.rank():05d}.csv"
    sub_path = shard_dir / f"submission.{dist.rank():05d}.csv"
    with open(pred_path, "w") as fp, open(sub_path, "w") as fs:
        for images, ids in MetricLogger().log_every(loader, 20, header="infer"):
            for det, im, image_id in zip(predict(model, list(images), amp), images, ids):
                df = _rows(det, image_id, im.shape[-2], im.shape[-1], names)
                df.to_csv(fp, header=False, index=False, float_format="%.6g")
                fs.write(f"{image_id},{_prediction_string(df)}\n")
                n_det += len(df)
    counts = dist.all_gather_object(n_det)    # the last collective; rank 0 merges after it
    if not dist.is_main():
        return None
    files = {}
    for kind, header in (("predictions", PRED_HEADER), ("submission", "ImageId,PredictionString")):
        final = out_dir / f"{kind}.csv"
        with open(final, "w") as out:
            out.write(header + "\n")
            for r in range(dist.world_size()):
                with open(shard_dir / f"{kind}.{r:05d}.csv") as part:
                    shutil.copyfileobj(part, out)
        files[kind] = final
    shutil.rmtree(shard_dir, ignore_errors=True)
    return {**files, "detections": int(sum(counts)), "images": len(dataset), "seconds": time.perf_counter() - t0}


def summarize(metrics: dict, class_names: list, stats: dict | None, rare_fraction: float = 1 / 3,
              multilabel_min_rate: float = 0.1) -> dict:
    """The paper's numbers from the official keys, in percent: ``mAP``; ``mAP_rare`` over the
    ``rare_fraction`` of evaluated classes with the fewest training images (hierarchy-expanded counts);
    ``mAP_multilabel`` over the evaluated classes whose annotated objects carry more than one label at
    least ``multilabel_min_rate`` of the time; ``per_class_AP`` (None for classes without ground truth)."""
    ap = per_class_ap(metrics)
    evaluated = [c for c in class_names if not math.isnan(ap[c])]
    out = {"mAP": 100.0 * float(np.mean([ap[c] for c in evaluated])) if evaluated else None,
           "per_class_AP": {c: (None if math.isnan(ap[c]) else 100.0 * ap[c]) for c in class_names},
           "classes_evaluated": len(evaluated)}
    if stats is not None and evaluated:
        index = {c: i for i, c in enumerate(class_names)}
        counts = np.array([stats["image_count"][index[c]] for c in evaluated])
        k = max(1, int(math.ceil(rare_fraction * len(evaluated))))
        rare = [evaluated[i] for i in np.argsort(counts, kind="stable")[:k]]
        multi = [c for c in evaluated if stats["multilabel_rate"][index[c]] >= multilabel_min_rate]
        out["mAP_rare"] = 100.0 * float(np.mean([ap[c] for c in rare]))
        out["mAP_multilabel"] = 100.0 * float(np.mean([ap[c] for c in multi])) if multi else None
        out["rare_classes"] = rare
        out["multilabel_classes"] = multi
    return out


def evaluate_predictions(predictions, gt_boxes, gt_labels, class_names, hierarchy, stats, args) -> dict:
    """The official metric on a predictions file or table, then ``summarize``; also returns the
    official keys (``official``)."""
    t = time.perf_counter()
    metrics = oid_evaluate(gt_boxes, gt_labels, predictions, classes=class_names, hierarchy=hierarchy)
    out = summarize(metrics, class_names, stats, args.rare_fraction, args.multilabel_min_rate)
    out["official"] = metrics
    out["eval_seconds"] = time.perf_counter() - t
    return out


def random_baseline(gt_boxes, gt_labels, class_names, hierarchy, stats, args, per_image: int = 100,
                    seed: int = 0) -> dict:
    """A trivial detector: ``per_image`` random boxes per evaluated image, random classes and scores."""
    rng = np.random.default_rng(seed)
    images = np.asarray(sorted(set(gt_boxes["ImageID"]) | set(gt_labels["ImageID"])), dtype=object)
    n = len(images) * per_image
    x0, y0 = rng.uniform(0, 0.9, n), rng.uniform(0, 0.9, n)
    w, h = rng.uniform(0.05, 0.5, n), rng.uniform(0.05, 0.5, n)
    preds = pd.DataFrame({"ImageID": np.repeat(images, per_image),
                          "LabelName": np.asarray(class_names, dtype=object)[rng.integers(len(class_names), size=n)],
                          "Score": rng.random(n), "XMin": x0, "XMax": np.minimum(1, x0 + w), "YMin": y0,
                          "YMax": np.minimum(1, y0 + h)})
    return evaluate_predictions(preds, gt_boxes, gt_labels, class_names, hierarchy, stats, args)
