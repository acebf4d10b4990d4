"""Benchmark: host memory of the inference bookkeeping with masks, now and as it was.

    python eql/bench/bench_eval_memory.py            # 50 images x 300 detections at 800 x 1333
    python eql/bench/bench_eval_memory.py --quick    # 10 images

Synthetic Mask R-CNN outputs stand in for the model (per image: 300 boxes of LVIS-like sizes,
28 x 28 blob-shaped mask probabilities, scores, labels), so only the bookkeeping is measured:

* new: what ``engine.inference`` does per image: ``eql.masks.masks_to_rle`` (each mask pasted over
  its box only, straight to RLE) and ``DetectionsBuilder.add``; then ``build()``.
* old: what the engine did before: every image's masks pasted at full resolution in chunks of
  2^26 pixels and kept as bool tensors until the end of the split (2 images, per image).

Each runs in a fresh subprocess; the figure is the growth of the peak resident set (``ru_maxrss``)
over the worker's own baseline (interpreter, torch, pycocotools loaded). Target: <= 1 GiB for the
50 images. The last line is JSON: {"images", "detections_per_image", "peak_mib", "old_mib_per_image"}.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

H, W, DETS = 800, 1333, 300


def _rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**20


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fake_outputs(seed: int, n: int = DETS) -> dict:
    """One image's detections: boxes xyxy (sizes log-uniform in 12-600 px), blob-shaped 28 x 28
    mask probabilities (a 5 x 5 random field upsampled), scores, labels."""
    g = torch.Generator().manual_seed(seed)
    size = torch.exp(torch.empty(n, 2).uniform_(np.log(12), np.log(600), generator=g))
    xy = torch.rand(n, 2, generator=g) * (torch.tensor([W, H]) - size).clamp(min=1)
    field = F.interpolate(torch.randn(n, 1, 5, 5, generator=g) * 3 + 1.5, size=(28, 28), mode="bilinear",
                          align_corners=False)
    return {"boxes": torch.cat([xy, xy + size], 1), "probs": torch.sigmoid(field[:, 0]),
            "scores": torch.rand(n, generator=g), "labels": torch.randint(1, 1204, (n,), generator=g)}


def old_paste(masks, boxes, h, w, threshold=0.5, max_elements=1 << 26) -> torch.Tensor:
    """The engine's former ``paste_masks``: all masks of an image at full resolution."""
    n = masks.shape[0]
    out = torch.zeros((n, h, w), dtype=torch.bool)
    step = max(1, max_elements // max(h * w, 1))
    ys = torch.arange(h, dtype=torch.float32) + 0.5
    xs = torch.arange(w, dtype=torch.float32) + 0.5
    for s in range(0, n, step):
        x0, y0, x1, y1 = boxes[s:s + step].float().unbind(1)
        gy = (ys[None] - y0[:, None]) / (y1 - y0).clamp(min=1e-6)[:, None] * 2 - 1
        gx = (xs[None] - x0[:, None]) / (x1 - x0).clamp(min=1e-6)[:, None] * 2 - 1
        k = len(x0)
        grid = torch.stack([gx[:, None, :].expand(k, h, w), gy[:, :, None].expand(k, h, w)], dim=3)
        out[s:s + step] = F.grid_sample(masks[s:s + step, None].float(), grid, align_corners=False)[:, 0] >= threshold
    return out


def worker(mode: str, images: int) -> dict:
    from eql.detections import DetectionsBuilder
    from eql.masks import masks_to_rle
    torch.set_num_threads(1)
    fake_outputs(0, 2)                                         # warm up what the loop will touch
    masks_to_rle(torch.rand(2, 28, 28), torch.tensor([[0.0, 0, 9, 9], [3, 3, 40, 50]]), H, W)
    base_peak, base_rss = _peak_mib(), _rss_mib()
    t0 = time.perf_counter()
    if mode == "new":
        found = DetectionsBuilder(with_masks=True)
        for i in range(images):
            o = fake_outputs(i)
            found.add(1000 + i, o["labels"].numpy(), o["scores"].numpy(), o["boxes"].numpy(),
                      masks_to_rle(o["probs"], o["boxes"], H, W))
        dets = found.build()
        kept = len(dets.masks.blob) + dets.boxes.nbytes + dets.score.nbytes + 16 * len(dets)
    else:
        kept_masks = []
        for i in range(images):
            o = fake_outputs(i)
            kept_masks.append(old_paste(o["probs"], o["boxes"], H, W))
        kept = sum(m.numel() for m in kept_masks)
    return {"mode": mode, "images": images, "peak_mib": _peak_mib() - base_peak, "rss_mib": _rss_mib() - base_rss,
            "kept_mib": kept / 2**20, "seconds_per_image": (time.perf_counter() - t0) / images}


def _run_worker(mode: str, images: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", mode, "--images", str(images)], capture_output=True,
                         text=True, check=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    return json.loads(out.stdout.strip().splitlines()[-1])


def get_args_parser():
    p = argparse.ArgumentParser("bench: host memory of inference bookkeeping with masks")
    p.add_argument("--images", type=int, default=50, help="images of 300 detections at 800 x 1333")
    p.add_argument("--quick", action="store_true", help="10 images")
    p.add_argument("--worker", default="", choices=["", "new", "old"], help=argparse.SUPPRESS)
    return p


def main(args):
    if args.worker:
        print(json.dumps(worker(args.worker, args.images)))
        return None
    images = 10 if args.quick else args.images
    new = _run_worker("new", images)
    old = _run_worker("old", 2)
    old_per_image = old["rss_mib"] / old["images"]
    print(f"{images} images x {DETS} detections with masks at {H} x {W}")
    print(f"  new (RLE per box, compact columns): peak +{new['peak_mib']:.0f} MiB in all, "
          f"{new['kept_mib']:.1f} MiB kept, {new['seconds_per_image']:.2f} s / image")
    print(f"  old (full-resolution masks kept):   +{old_per_image:.0f} MiB per image kept "
          f"(peak +{old['peak_mib']:.0f} MiB for {old['images']} images): "
          f"{old_per_image * images / 1024:.1f} GiB for {images} images")
    verdict = "meets" if new["peak_mib"] <= 1024 else "MISSES"
    print(f"  {verdict} the 1 GiB target; old / new memory ratio {old_per_image * images / max(new['peak_mib'], 1):.0f}x")
    result = {"images": images, "detections_per_image": DETS, "peak_mib": round(new["peak_mib"], 1),
              "old_mib_per_image": round(old_per_image, 1)}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
