"""The loop, written out: one training iteration, inference over a split (LVIS results format),
and evaluation with the LVIS protocol (``eql.lvis_eval``)."""
from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.models.detection.transform import resize_boxes

from eql.lvis_eval import evaluate as lvis_evaluate
from shared import dist
from shared.device import autocast
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
    if not torch.isfinite(total):
        bad = [k for k, v in losses.items() if not torch.isfinite(v)]
        raise FloatingPointError(f"non-finite loss at iteration {it}: terms {bad} "
                                 f"({ {k: float(v.detach()) for k, v in losses.items()} })")
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    if clip_grad > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
    optimizer.step()
    out = {k: v.detach() for k, v in losses.items()}
    out["total"] = total.detach()
    return out


def paste_masks(masks: torch.Tensor, boxes: torch.Tensor, h: int, w: int, threshold: float = 0.5,
                max_elements: int = 1 << 26) -> torch.Tensor:
    """Binary image masks [N, h, w] from box-relative mask probabilities [N, M, M], all at once
    (bilinear sampling of each box's M x M grid at the pixel centres inside the box, as
    detectron2 pastes), in chunks of at most ``max_elements`` output pixels."""
    n = masks.shape[0]
    out = torch.zeros((n, h, w), dtype=torch.bool, device=masks.device)
    if n == 0:
        return out
    step = max(1, max_elements // max(h * w, 1))
    ys = torch.arange(h, device=masks.device, dtype=torch.float32) + 0.5
    xs = torch.arange(w, device=masks.device, dtype=torch.float32) + 0.5
    for s in range(0, n, step):
        b = boxes[s:s + step].float()
        x0, y0, x1, y1 = b.unbind(1)
        gy = (ys[None] - y0[:, None]) / (y1 - y0).clamp(min=1e-6)[:, None] * 2 - 1
        gx = (xs[None] - x0[:, None]) / (x1 - x0).clamp(min=1e-6)[:, None] * 2 - 1
        k = b.shape[0]
        grid = torch.stack([gx[:, None, :].expand(k, h, w), gy[:, :, None].expand(k, h, w)], dim=3)
        prob = F.grid_sample(masks[s:s + step, None].float(), grid, align_corners=False)[:, 0]
        out[s:s + step] = prob >= threshold
    return out


@torch.no_grad()
def predict(model, images: list, amp: bool = False) -> list:
    """Detections in original image coordinates: {boxes xyxy, scores, labels 1..C[, masks bool]}.

    The steps of torchvision's ``GeneralizedRCNN.forward`` in eval mode, except that masks are
    pasted in one batched sampling (``paste_masks``) instead of one interpolation per detection."""
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
            r["masks"] = paste_masks(d["masks"][:, 0], r["boxes"], o[0], o[1])
        out.append(r)
    return out


def detections_to_columns(outputs: list, image_ids: list, cat_ids: list) -> dict:
    """Per-rank detections as compact columns (numpy; masks as RLE dicts with str counts)."""
    from pycocotools import mask as mask_utils
    cols = {"image_id": [], "category_id": [], "score": [], "bbox": [], "segmentation": []}
    cat_arr = np.asarray(cat_ids, np.int64)
    for o, img in zip(outputs, image_ids):
        b = o["boxes"].cpu().numpy().astype(np.float64)
        n = len(b)
        cols["image_id"].append(np.full(n, img, np.int64))
        cols["category_id"].append(cat_arr[o["labels"].cpu().numpy() - 1])
        cols["score"].append(o["scores"].cpu().numpy().astype(np.float64))
        cols["bbox"].append(np.column_stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]]) if n
                            else np.zeros((0, 4)))
        if "masks" in o and n:
            rles = mask_utils.encode(np.asfortranarray(o["masks"].cpu().numpy().transpose(1, 2, 0).astype(np.uint8)))
            for r in rles:
                r["counts"] = r["counts"].decode("ascii")
            cols["segmentation"].extend(rles)
    out = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in cols.items() if k != "segmentation"}
    out["bbox"] = out["bbox"].reshape(-1, 4)
    out["segmentation"] = cols["segmentation"] or None
    return out


def merge_columns(parts: list) -> dict:
    """Concatenate the ranks' columns, ordered by image id (a stable order: ties keep rank order)."""
    parts = [p for p in parts if len(p["image_id"])]
    if not parts:
        return {"image_id": np.zeros(0, np.int64), "category_id": np.zeros(0, np.int64), "score": np.zeros(0),
                "bbox": np.zeros((0, 4)), "segmentation": None}
    out = {k: np.concatenate([p[k] for p in parts]) for k in ("image_id", "category_id", "score", "bbox")}
    segm = None
    if all(p["segmentation"] is not None for p in parts):
        segm = [s for p in parts for s in p["segmentation"]]
    order = np.argsort(out["image_id"], kind="stable")
    out = {k: v[order] for k, v in out.items()}
    out["segmentation"] = [segm[i] for i in order] if segm is not None else None
    return out


def columns_to_results(cols: dict) -> list:
    """The LVIS results list (what lvis-api and the evaluation server read)."""
    res = []
    segm = cols.get("segmentation")
    for i, (img, cat, score, box) in enumerate(zip(cols["image_id"].tolist(), cols["category_id"].tolist(),
                                                   cols["score"].tolist(), cols["bbox"].tolist())):
        r = {"image_id": img, "category_id": cat, "bbox": box, "score": score}
        if segm is not None:
            r["segmentation"] = segm[i]
        res.append(r)
    return res


@torch.no_grad()
def inference(model, dataset, device, batch_size: int = 1, amp: bool = False) -> dict | None:
    """Run the detector over ``dataset`` (each rank a strided shard, no duplicates); rank 0 returns
    the merged detections as columns (None elsewhere)."""
    model.eval()
    idx = list(range(dist.rank(), len(dataset), dist.world_size()))
    ids = dataset.image_ids()
    outputs, out_ids = [], []
    meters = MetricLogger()
    batches = [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    for b in meters.log_every(batches, 20, header="infer"):
        items = [dataset[i] for i in b]
        images = [im.to(device) for im, _ in items]
        outputs.extend({k: v.cpu() for k, v in o.items()} for o in predict(model, images, amp))
        out_ids.extend(ids[i] for i in b)
    cols = detections_to_columns(outputs, out_ids, dataset.lvis.cat_ids)
    parts = dist.all_gather_object(cols)
    return merge_columns(parts) if dist.is_main() else None


def evaluate_split(model, data: dict, device, args, out_dir: Path | None, amp: bool = False) -> dict | None:
    """Infer on the validation split, write ``lvis_results.json`` (when ``out_dir``), evaluate box
    (and mask) AP with the LVIS protocol; rank 0 returns {'bbox': {...}, 'segm': {...}} in percent."""
    t0 = time.perf_counter()
    cols = inference(model, data["val"], device, batch_size=args.eval_batch_size, amp=amp)
    if not dist.is_main():
        return None
    gt = _val_gt(data)
    t1 = time.perf_counter()
    metrics = {"bbox": percent(lvis_evaluate(gt, cols, "bbox"))}
    if args.arch == "mask_rcnn":
        metrics["segm"] = percent(lvis_evaluate(gt, cols, "segm"))
    metrics["detections"] = int(len(cols["image_id"]))
    metrics["images"] = len(data["val"])
    metrics["inference_seconds"] = t1 - t0
    metrics["eval_seconds"] = time.perf_counter() - t1
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "lvis_results.json").write_text(json.dumps(columns_to_results(cols)))
    return metrics


def _val_gt(data: dict) -> dict:
    """The validation GT as evaluated (restricted to the images actually run with --max-val-images)."""
    raw = data["lvis_val"].raw
    ids = set(data["val"].image_ids())
    if len(ids) == len(raw["images"]):
        return raw
    return {**raw, "images": [im for im in raw["images"] if im["id"] in ids],
            "annotations": [a for a in raw["annotations"] if a["image_id"] in ids]}


def percent(res: dict) -> dict:
    """Metrics in percent (as the paper's tables), per-category AP kept as a fraction, NaN -> None."""
    out = {k: (100.0 * v if v >= 0 else None) for k, v in res.items() if isinstance(v, float)}
    out["per_category_AP"] = {str(k): (None if math.isnan(v) else v) for k, v in res["per_category_AP"].items()}
    return out


def random_baseline(data: dict, n: int = 300, seed: int = 0) -> dict:
    """Box AP of a trivial detector: ``n`` random boxes per validation image with random categories
    and scores (what a short toy training must beat)."""
    rng = np.random.default_rng(seed)
    gt = _val_gt(data)
    cat_ids = np.asarray(data["cat_ids"])
    parts = []
    for im in gt["images"]:
        w, h = float(im["width"]), float(im["height"])
        bw, bh = rng.uniform(0.05, 0.5, n) * w, rng.uniform(0.05, 0.5, n) * h
        x, y = rng.uniform(0, 1, n) * (w - bw), rng.uniform(0, 1, n) * (h - bh)
        parts.append({"image_id": np.full(n, im["id"]), "category_id": rng.choice(cat_ids, n),
                      "score": rng.random(n), "bbox": np.column_stack([x, y, bw, bh]), "segmentation": None})
    return percent(lvis_evaluate(gt, merge_columns(parts), "bbox"))


def format_metrics(rows: dict, keys=("AP", "AP50", "APr", "APc", "APf")) -> str:
    """A Markdown table, one row per {name: metrics dict (percent)}."""
    lines = ["| | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, m in rows.items():
        lines.append(f"| {name} | " + " | ".join("—" if m.get(k) is None else f"{m[k]:.2f}" for k in keys) + " |")
    return "\n".join(lines)
