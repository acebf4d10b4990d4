"""The loop, written out: one training iteration, inference over a split (compact detections, masks
as RLE), and evaluation with the LVIS protocol shared out over ranks (``eql.evaluation``)."""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
from torchvision.models.detection.transform import resize_boxes

from eql.detections import Detections, DetectionsBuilder
from eql.evaluation import evaluate_sharded, write_results_file
from eql.masks import masks_to_rle
from shared import dist
from shared.device import autocast
from shared.finite import check_finite
from shared.log import MetricLogger

log = logging.getLogger("eql")
HEADLINE = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf", "AR@300")


def to_device(images, targets, device):
    images = [im.to(device, non_blocking=True) for im in images]
    targets = [{k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in t.items()}
               for t in targets]
    return images, targets


def train_step(model, images, targets, optimizer, device, it: int, *, amp: bool = True, clip_grad: float = 0.0) -> dict:
    """Forward, loss dict, sum, finiteness check naming the bad term, backward, clip, step."""
    images, targets = to_device(images, targets, device)
    with autocast(device, amp):
        losses = model(images, targets)
    losses = {k: v.float() for k, v in losses.items()}
    total = sum(losses.values())
    check_finite(losses, f"iteration {it}", total)
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    if clip_grad > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
    optimizer.step()
    out = {k: v.detach() for k, v in losses.items()}
    out["total"] = total.detach()
    return out


@torch.no_grad()
def predict(model, images: list, amp: bool = False) -> list:
    """Detections in original image coordinates: {boxes xyxy float32, scores, labels 1..C[, rles]}.

    The steps of torchvision's ``GeneralizedRCNN.forward`` in eval mode, except that each image's
    masks are turned into COCO RLE here (``eql.masks``: pasted over their boxes only, never as
    full-resolution masks); ``rles`` holds one compressed RLE dict per detection."""
    device = next(model.parameters()).device
    sizes = [tuple(im.shape[-2:]) for im in images]
    with autocast(device, amp):
        batch, _ = model.transform(images)
        features = model.backbone(batch.tensors)
        proposals, _ = model.rpn(batch, features)
        dets, _ = model.roi_heads(features, proposals, batch.image_sizes)
    out = []
    for d, s, o in zip(dets, batch.image_sizes, sizes):
        r = {"boxes": resize_boxes(d["boxes"].float(), s, o), "scores": d["scores"].float(), "labels": d["labels"]}
        if "masks" in d:
            r["rles"] = masks_to_rle(d["masks"][:, 0], r["boxes"], o[0], o[1])
        out.append(r)
    return out


@torch.no_grad()
def inference(model, dataset, device, batch_size: int = 1, amp: bool = False) -> Detections:
    """Run the detector over this rank's shard of ``dataset`` (images rank, rank + W, ...): its
    detections as compact columns (boxes, scores, category ids, RLE masks), encoded image by image."""
    model.eval()
    idx = list(range(dist.rank(), len(dataset), dist.world_size()))
    ids = dataset.image_ids()
    cat_ids = np.asarray(dataset.cat_ids, np.int64)
    found = DetectionsBuilder(with_masks=model.roi_heads.has_mask())
    meters = MetricLogger()
    batches = [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    for b in meters.log_every(batches, 20, header="infer"):
        images = [dataset[i][0].to(device) for i in b]
        for i, o in zip(b, predict(model, images, amp)):
            found.add(ids[i], cat_ids[o["labels"].cpu().numpy() - 1], o["scores"].cpu().numpy(),
                      o["boxes"].cpu().numpy(), o.get("rles"))
    return found.build()


def evaluate_split(model, data: dict, device, args, out_dir: Path | None, amp: bool = False) -> dict:
    """Infer on the validation split (sharded over ranks), evaluate box (and mask) AP with the LVIS
    protocol (shared out over ranks, ``eql.evaluation``) and, with ``out_dir``, write
    ``lvis_results.json`` there. A collective; every rank returns {'bbox': {...}, 'segm': {...}}
    in percent."""
    t0 = time.perf_counter()
    dets = inference(model, data["val"], device, batch_size=args.eval_batch_size, amp=amp)
    t1 = time.perf_counter()
    iou_types = ("bbox", "segm") if dets.masks is not None else ("bbox",)
    res = evaluate_sharded(data["val_gt"], dets, iou_types)
    metrics = {t: percent(res[t]) for t in iou_types}
    metrics["detections"] = int(sum(dist.all_gather_object(len(dets))))
    metrics["images"] = len(data["val"])
    metrics["inference_seconds"] = t1 - t0
    metrics["eval_seconds"] = time.perf_counter() - t1
    if out_dir is not None:
        write_results_file(dets, Path(out_dir) / "lvis_results.json")
    return metrics


def percent(res: dict) -> dict:
    """Metrics in percent (as the paper's tables), per-category AP kept as a fraction, NaN -> None."""
    out = {k: (100.0 * v if v >= 0 else None) for k, v in res.items() if isinstance(v, float)}
    out["per_category_AP"] = {str(k): (None if math.isnan(v) else v) for k, v in res["per_category_AP"].items()}
    return out


def random_baseline(data: dict, n: int = 300, seed: int = 0) -> dict:
    """Box AP of a trivial detector: ``n`` random boxes per validation image with random categories
    and scores, drawn per image from (seed, image id), what a short toy training must beat. A
    collective (each rank draws and evaluates its share, as ``evaluate_split``)."""
    gt = data["val_gt"]
    hw = {int(im["id"]): (float(im["height"]), float(im["width"])) for im in gt["images"]}
    cat_ids = np.asarray(data["cat_ids"])
    found = DetectionsBuilder(with_masks=False)
    for img in data["val"].image_ids()[dist.rank()::dist.world_size()]:
        rng = np.random.default_rng([seed, img])
        h, w = hw[img]
        bw, bh = rng.uniform(0.05, 0.5, n) * w, rng.uniform(0.05, 0.5, n) * h
        x, y = rng.uniform(0, 1, n) * (w - bw), rng.uniform(0, 1, n) * (h - bh)
        found.add(img, rng.choice(cat_ids, n), rng.random(n), np.column_stack([x, y, x + bw, y + bh]))
    return percent(evaluate_sharded(gt, found.build(), ("bbox",))["bbox"])


def format_metrics(rows: dict, keys=("AP", "AP50", "APr", "APc", "APf")) -> str:
    """A Markdown table, one row per {name: metrics dict (percent)}."""
    lines = ["| | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, m in rows.items():
        lines.append(f"| {name} | " + " | ".join("—" if m.get(k) is None else f"{m[k]:.2f}" for k in keys) + " |")
    return "\n".join(lines)
