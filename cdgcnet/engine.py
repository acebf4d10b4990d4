"""The training step and inference: whole image, sliding window, multi-scale + flip; exact mIoU.

Inference keeps one image's accumulator at its full resolution (C x H x W, fp32) and turns it into
a label map before the next image: memory does not grow with the split. Each rank takes every
world-size-th image (no padding duplicates); the confusion matrices are summed over ranks once.

* ``whole``: the image in one forward pass, logits upsampled (bilinear) to the image size.
* ``slide``: windows of the training crop with stride 2/3 of it (CCNet's ``predict_sliding``); the
  last row and column are aligned to the image border, windows that exceed a small image are padded
  (with the mean), and the logits of overlapping windows are averaged.
* ``ms_flip``: sliding-window logits at each scale (0.5:0.25:1.75 by default) and of the flipped
  image, each turned into softmax probabilities, resized to the image and averaged
  (mmsegmentation's ``aug_test``).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from shared import dist
from shared.device import autocast
from shared.finite import check_finite
from shared.log import MetricLogger
from shared.metrics.segmentation import ConfusionMatrix

__all__ = ["train_step", "forward_logits", "slide_logits", "predict", "evaluate", "summarize", "MODES"]

MODES = ("whole", "slide", "ms_flip")


def train_step(model, criterion, images, labels, optimizer, device, amp: bool, clip_grad: float = 0.0) -> dict:
    """Forward (bf16 autocast on CUDA when `amp`), the loss terms in fp32, backward, SGD step."""
    with autocast(device, amp):
        out = model(images, labels)
    terms = criterion({k: v.float() for k, v in out.items()}, labels)
    check_finite(terms, "a training step", terms["loss"])
    optimizer.zero_grad(set_to_none=True)
    terms["loss"].backward()
    if clip_grad > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
    optimizer.step()
    return {k: float(v.detach()) for k, v in terms.items()}


def forward_logits(model, images: torch.Tensor) -> torch.Tensor:
    """fp32 logits [B, C, H, W] at the input size (a model may return a tensor or a dict with "final")."""
    out = model(images)
    logits = out["final"] if isinstance(out, dict) else out
    if logits.shape[-2:] != images.shape[-2:]:
        logits = F.interpolate(logits.float(), size=images.shape[-2:], mode="bilinear", align_corners=False)
    return logits.float()


def _windows(size: int, crop: int, stride: int):
    n = max(math.ceil((size - crop) / stride), 0) + 1
    for i in range(n):
        end = min(i * stride + crop, size)
        yield max(end - crop, 0), end


def slide_logits(model, image: torch.Tensor, crop, stride=None) -> torch.Tensor:
    """Averaged logits [1, C, H, W] of the windows of `crop` (h, w) at `stride` (default 2/3 crop)."""
    ch, cw = crop
    sh, sw = stride or (math.ceil(ch * 2 / 3), math.ceil(cw * 2 / 3))
    H, W = image.shape[-2:]
    acc, count = None, torch.zeros(1, 1, H, W, device=image.device)
    for y1, y2 in _windows(H, ch, sh):
        for x1, x2 in _windows(W, cw, sw):
            win = image[..., y1:y2, x1:x2]
            h, w = win.shape[-2:]
            if h < ch or w < cw:
                win = F.pad(win, (0, cw - w, 0, ch - h))
            logits = forward_logits(model, win)[..., :h, :w]
            if acc is None:
                acc = torch.zeros(1, logits.shape[1], H, W, device=image.device)
            acc[..., y1:y2, x1:x2] += logits
            count[..., y1:y2, x1:x2] += 1
    return acc / count


def predict(model, image: torch.Tensor, mode: str = "whole", crop=(769, 769), stride=None,
            scales=(0.5, 0.75, 1.0, 1.25, 1.5, 1.75), flip: bool = True) -> torch.Tensor:
    """Scores [1, C, H, W] of one normalised image [1, 3, H, W]: logits (whole, slide) or averaged
    probabilities (ms_flip); argmax gives the prediction."""
    if mode == "whole":
        return forward_logits(model, image)
    if mode == "slide":
        return slide_logits(model, image, crop, stride)
    if mode != "ms_flip":
        raise ValueError(f"--mode {mode!r}: use one of {MODES}")
    H, W = image.shape[-2:]
    acc, n = None, 0
    for s in scales:
        scaled = image if s == 1.0 else F.interpolate(
            image, size=(max(1, round(H * s)), max(1, round(W * s))), mode="bilinear", align_corners=False)
        for flipped in ((False, True) if flip else (False,)):
            x = scaled.flip(-1) if flipped else scaled
            logits = slide_logits(model, x, crop, stride)
            if flipped:
                logits = logits.flip(-1)
            prob = logits.softmax(1)
            if prob.shape[-2:] != (H, W):
                prob = F.interpolate(prob, size=(H, W), mode="bilinear", align_corners=False)
            acc = prob if acc is None else acc + prob
            n += 1
    return acc / n


def summarize(res: dict, classes, **extra) -> dict:
    """`ConfusionMatrix.compute` output -> results.json fields, in percent (None where undefined)."""
    def pct(v):
        return None if v is None or np.isnan(v) else 100.0 * float(v)

    out = {"miou": pct(res["miou"]), "iou": {c: pct(v) for c, v in zip(classes, res["iou"])},
           "aacc": pct(res["aacc"]), "macc": pct(res["macc"])}
    if "category_miou" in res:
        out["category_miou"] = pct(res["category_miou"])
        out["category_iou"] = {k: pct(v) for k, v in res["category_iou"].items()}
    out["num_classes_in_mean"] = res["num_classes_in_mean"]
    return {**out, **extra}


@torch.no_grad()
def evaluate(model, dataset, device, *, mode="whole", crop=(769, 769), stride=None, scales=(1.0,), flip=False,
             amp=False, baseline_class=None, save_pred=None, workers=0, print_freq=50, split="val") -> dict:
    """Predict every image of `dataset` (a `SegDataset` in evaluation mode), sharded over ranks.

    Returns the results.json fields (percent) when the split has labels, plus
    ``baseline_majority_miou`` (every pixel predicted as `baseline_class`) when that is given.
    `save_pred`: a folder receiving each prediction as a PNG in the dataset's native ids.
    """
    model.eval()
    source = dataset.source
    c = source.num_classes
    shard = torch.utils.data.Subset(dataset, range(dist.rank(), len(dataset), dist.world_size()))
    loader = torch.utils.data.DataLoader(shard, batch_size=1, num_workers=workers, shuffle=False)
    cm, base = ConfusionMatrix(c, 255), (ConfusionMatrix(c, 255) if baseline_class is not None else None)
    if save_pred:
        Path(save_pred).mkdir(parents=True, exist_ok=True)
    labelled = False
    for image, label, index in MetricLogger().log_every(loader, print_freq, header=f"eval {mode}"):
        image = image.to(device, non_blocking=True)
        with autocast(device, amp):
            scores = predict(model, image, mode, crop, stride, scales, flip)
        pred = scores.argmax(1)[0]
        if label.numel():
            labelled = True
            label = label[0].to(device)
            cm.update(pred, label)
            if base is not None:
                base.update(torch.full_like(label, baseline_class), label)
        if save_pred:
            rec = dataset.records[int(index)]
            native = source.to_native(pred.cpu().numpy().astype(np.uint8))
            Image.fromarray(native.astype(np.uint8)).save(Path(save_pred) / f"{rec.name}{source.pred_suffix}")
    labelled = any(dist.all_gather_object(labelled))
    cm.all_reduce()
    extra = {"mode": mode, "scales": list(scales) if mode == "ms_flip" else [1.0],
             "flip": bool(flip and mode == "ms_flip"), "split": split, "num_images": len(dataset)}
    if not labelled:
        return extra
    out = summarize(cm.compute(categories=source.categories), source.classes, **extra)
    if base is not None:
        base.all_reduce()
        out["baseline_majority_miou"] = 100.0 * base.compute()["miou"]
        out["baseline_class"] = source.classes[baseline_class]
    return out
