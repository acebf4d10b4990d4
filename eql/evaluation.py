"""LVIS evaluation of a split under torchrun, shared out so that no rank works alone while the
others wait in a collective, and no rank holds more than its share of the detections.

1. Each rank has run the detector on its own images (``engine.inference``) and holds their
   detections as compact columns (``eql.detections``: boxes and RLE masks, no pasted masks). Every
   image lives on one rank, so the per-image cut to the 300 best scores happens there.
2. Categories are shared out (rank r owns the categories at positions r, r + W, ... of the sorted
   ids) and the detections exchanged (W gather rounds), so each rank holds every detection of its
   own categories and nothing else.
3. Each rank evaluates its categories with ``eql.lvis_eval`` (box and mask AP: a category's AP
   depends on its own detections and ground truth only); the per-category precision / recall
   slices are gathered by every rank, which put them together and summarise: every rank returns
   the same metrics, equal to a one-process evaluation of the whole split.
4. The LVIS results file is written by all ranks at once: each writes its own detections to a
   part file, the part sizes are gathered, and each copies its part at its offset into the one
   file (the run folder must be on a file system all ranks see, as for checkpoints).

In one process all of this reduces to evaluating the whole split.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from eql.detections import Detections
from eql.lvis_eval import FREQ_LBL, evaluate, summarize_arrays, top_per_image
from shared import dist

__all__ = ["exchange", "evaluate_sharded", "write_results_file"]


def exchange(parts: list) -> list:
    """All-to-all of Python objects: ``parts[d]`` goes to rank d; returns what each rank sent to
    this one, in rank order (a collective: every rank calls it with ``world_size`` parts)."""
    if not dist.is_dist():
        return list(parts[:1])
    import torch.distributed as td
    me, received = dist.rank(), None
    for d in range(dist.world_size()):
        out = [None] * dist.world_size() if me == d else None
        td.gather_object(parts[d], out, dst=d)
        if me == d:
            received = out
    return received


def _categories(gt: dict) -> tuple[np.ndarray, np.ndarray]:
    cats = sorted(gt["categories"], key=lambda c: c["id"])
    return (np.asarray([int(c["id"]) for c in cats], np.int64),
            np.asarray([FREQ_LBL.index(c["frequency"]) for c in cats], np.int64))


def evaluate_sharded(gt: dict, dets: Detections, iou_types=("bbox",), max_dets: int = 300) -> dict:
    """{iou type: the metrics of ``eql.lvis_eval.evaluate``} on every rank; ``dets`` are this
    rank's detections (of its own images). A collective."""
    cat_ids, freq_of = _categories(gt)
    ws, me = dist.world_size(), dist.rank()
    dets = dets.take(top_per_image(dets.image_id, dets.score.astype(np.float64), max_dets))
    pos = np.minimum(np.searchsorted(cat_ids, dets.category_id), max(len(cat_ids) - 1, 0))
    known = cat_ids[pos] == dets.category_id if len(cat_ids) else np.zeros(len(dets), bool)
    owner = np.where(known, pos % ws, -1)                    # unknown categories count nowhere
    mine = Detections.concat(exchange([dets.take(np.nonzero(owner == r)[0]) for r in range(ws)]))
    ks = np.arange(me, len(cat_ids), ws)
    out = {}
    for iou_type in iou_types:
        res = evaluate(gt, mine.eval_columns(), iou_type, max_dets, categories=cat_ids[ks], return_arrays=True)
        pieces = dist.all_gather_object((ks, res["precision"][:, :, ks], res["recall"][:, ks]))
        precision = -np.ones(res["precision"].shape)
        recall = -np.ones(res["recall"].shape)
        for k, p, r in pieces:
            precision[:, :, k], recall[:, k] = p, r
        out[iou_type] = summarize_arrays(precision, recall, cat_ids, freq_of, max_dets)
    return out


def write_results_file(dets: Detections, path: str | os.PathLike) -> int:
    """Write every rank's detections as one LVIS results JSON list (a collective); returns the
    number of detections in the file."""
    path = Path(path)
    me = dist.rank()
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.part{me}")
    with open(part, "w") as f:
        dets.write_json_items(f)
    sizes = dist.all_gather_object((part.stat().st_size, len(dets)))
    offsets, pos = [], 1                                     # after "["
    for size, _ in sizes:
        comma = size > 0 and pos > 1                         # a comma before every part but the first
        offsets.append((pos, comma))
        pos += size + comma
    tmp = path.with_name(f".{path.name}.tmp")
    if dist.is_main():
        with open(tmp, "wb") as f:
            f.truncate(pos + 1)
            f.write(b"[")
            f.seek(pos)
            f.write(b"]")
    dist.barrier()
    start, comma = offsets[me]
    if sizes[me][0]:
        with open(tmp, "r+b") as f, open(part, "rb") as src:
            f.seek(start)
            if comma:
                f.write(b",")
            shutil.copyfileobj(src, f, 1 << 20)
    part.unlink()
    dist.barrier()
    if dist.is_main():
        os.replace(tmp, path)
    return sum(n for _, n in sizes)
