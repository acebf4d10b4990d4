"""Predicted instance masks to COCO run-length encoding, one detection at a time, without ever
holding a full-resolution mask per detection.

Mask R-CNN predicts an M x M probability grid per detection box. The LVIS results format wants an
image-sized binary mask per detection, RLE-compressed (pycocotools' string form). Pasting all
300 detections of an 800 x 1333 image at full resolution takes 300 x 1 MB and keeping them until
the end of a split takes tens of GB, so here each mask is pasted only over the pixels its box can
reach, and that region is turned into the image's RLE directly (runs of the column-major image).

The pasting is detectron2's: the box's M x M grid is bilinearly sampled at the pixel centres (zero
outside the grid, ``align_corners=False``) and thresholded at 0.5. A pixel centre more than half a
grid cell outside the box samples only zeros, so restricting the sampling to the box grown by one
cell and one pixel gives exactly the mask a full-image paste gives (a test checks bit equality).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["masks_to_rle", "paste_region", "region_to_rle"]


def paste_region(prob: torch.Tensor, box, h: int, w: int, threshold: float = 0.5):
    """Binary mask of one detection over the pixels it can cover.

    prob: [M, M] mask probabilities of the box; box: (x0, y0, x1, y1) in image pixels (float32
    values). Returns (mask [rh, rw] bool numpy, top row, left column) of the region, possibly empty.
    """
    m = prob.shape[-1]
    b = torch.as_tensor(box, dtype=torch.float32)
    fx0, fy0, fx1, fy1 = b.tolist()
    cx, cy = max(fx1 - fx0, 1e-6) / (2 * m) + 1, max(fy1 - fy0, 1e-6) / (2 * m) + 1   # half a grid cell + a pixel
    xa, xb = max(0, math.floor(fx0 - cx)), min(w, math.ceil(fx1 + cx))
    ya, yb = max(0, math.floor(fy0 - cy)), min(h, math.ceil(fy1 + cy))
    if xb <= xa or yb <= ya:
        return np.zeros((0, 0), bool), 0, 0
    x0, y0, x1, y1 = b.to(prob.device).unbind(0)
    bw, bh = (x1 - x0).clamp(min=1e-6), (y1 - y0).clamp(min=1e-6)
    ys = torch.arange(ya, yb, device=prob.device, dtype=torch.float32) + 0.5
    xs = torch.arange(xa, xb, device=prob.device, dtype=torch.float32) + 0.5
    gy = (ys - y0) / bh * 2 - 1
    gx = (xs - x0) / bw * 2 - 1
    rh, rw = yb - ya, xb - xa
    grid = torch.stack([gx[None, :].expand(rh, rw), gy[:, None].expand(rh, rw)], dim=2)[None]
    sampled = F.grid_sample(prob[None, None].float(), grid, align_corners=False)[0, 0]
    return (sampled >= threshold).cpu().numpy(), ya, xa


def region_to_rle(region: np.ndarray, top: int, left: int, h: int, w: int) -> dict:
    """The compressed COCO RLE ({'size': [h, w], 'counts': bytes}) of an h x w image that is zero
    except for ``region`` placed at (top, left): what ``pycocotools.mask.encode`` returns for the
    full mask, computed from the runs of the region's columns."""
    from pycocotools import mask as mask_utils
    rh, rw = region.shape if region.size else (0, 0)
    counts = [h * w]
    if rh and rw and region.any():
        cols = np.zeros((rw, rh + 2), np.int8)
        cols[:, 1:-1] = region.T                                      # one row per image column
        step = np.diff(cols, axis=1)                                  # +1: a run starts, -1: it ends
        c_s, r_s = np.nonzero(step == 1)
        c_e, r_e = np.nonzero(step == -1)
        starts = (left + c_s).astype(np.int64) * h + top + r_s        # column-major positions
        ends = (left + c_e).astype(np.int64) * h + top + r_e
        touch = ends[:-1] == starts[1:]                               # a run crossing a column boundary
        starts = np.concatenate([starts[:1], starts[1:][~touch]])
        ends = np.concatenate([ends[:-1][~touch], ends[-1:]])
        edges = np.empty(2 * len(starts), np.int64)
        edges[0::2], edges[1::2] = starts, ends
        runs = np.diff(np.concatenate([[0], edges]))
        counts = runs.tolist() + ([h * w - int(ends[-1])] if ends[-1] < h * w else [])
    return mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)


def masks_to_rle(probs: torch.Tensor, boxes: torch.Tensor, h: int, w: int, threshold: float = 0.5) -> list:
    """One compressed RLE dict per detection: probs [N, M, M] (any device), boxes [N, 4] xyxy in
    the h x w image. Counts are bytes (``decode('ascii')`` gives the results file's string)."""
    return [region_to_rle(*paste_region(p, b, h, w, threshold), h, w) for p, b in zip(probs, boxes.float().cpu())]
