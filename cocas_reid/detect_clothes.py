"""Train the clothes detector and write the gallery's clothes boxes (BC-Net, Sec. 4.2).

    cd cocas_reid && python detect_clothes.py [--config configs/toy.yaml] [--data-root D]
    torchrun --nproc_per_node 8 detect_clothes.py --config configs/cocas_bcnet.yaml --data-root D

Faster R-CNN (torchvision) learns one class, "clothes", from the training images' boxes: the tight
box around the LIP clothes labels of `parsing/<image>.png`, or the boxes of `--box-file`. It then
detects the best clothes box of every gallery image; an image with no detection gets the fixed
torso crop (listed as `fallback`). `make cocas_reid-train` runs this first when the gallery
patches come from the detector and no box file exists yet.

Run folder `runs/cocas_reid/<config>-detector/<timestamp>/`: `checkpoint_last.pt` (resumable with
--resume auto), `metrics.jsonl`, `clothes_boxes.json`, and `results.json` with the boxes' IoU
against the gallery's parsing boxes where those exist.
"""
from __future__ import annotations

import argparse
import json
import logging
import math

import numpy as np
import torch
from torch.utils.data import DataLoader

from cocas_reid import build
from cocas_reid import clothes as clothes_lib
from cocas_reid.detector import BoxDataset, box_iou, build_detector, collate, detect, train_detector_epoch
from shared import checkpoint as ckpt_lib
from shared import config, dist, log, run
from shared.device import resolve_device

logger = logging.getLogger("cocas_reid")


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("cocas_reid clothes detector", add_help=add_help)
    config.add_runtime_args(p, toy_config=build.TOY_CONFIG)
    build.add_data_args(p)
    build.add_detector_args(p)
    # accepted so that every config loads; unused here
    build.add_model_args(p)
    build.add_loss_args(p)
    build.add_optim_args(p)
    build.add_eval_args(p)
    return p


def training_boxes(args, data) -> tuple[list, np.ndarray, int]:
    """(files, N x 4 boxes, images skipped for want of a box) of the training split."""
    files = data.splits["train"].files
    if args.box_file:
        found = clothes_lib.read_box_file(args.box_file)["boxes"]
    else:
        found = clothes_lib.parsing_boxes(data.root, files, args.clothes_ids, required=False)
    kept = [f for f in files if f in found]
    if not kept:
        raise FileNotFoundError(f"no training box: {'--box-file ' + args.box_file if args.box_file else 'no parsing map under ' + str(data.root / 'parsing')} "
                                f"holds any of the {len(files)} training images")
    return kept, np.asarray([found[f] for f in kept], np.float32), len(files) - len(kept)


def run_detection(args, data, device):
    """Train (or resume) the detector, detect the gallery's clothes boxes; returns the box file."""
    run_dir, resume_from = run.resolve_run_dir(args, build.PAPER, name="detector")
    log.setup_logging(run_dir)
    config.save_config(args, run_dir / "config.yaml")
    log.run_info(args, run_dir)
    dist.seed_everything(args.seed)
    files, boxes, skipped = training_boxes(args, data)
    logger.info("clothes detector: %d training boxes (%d images without one), %s", len(files), skipped, args.detector)
    ds = BoxDataset(data.root, files, boxes, data.variant, train=True, flip=args.flip)
    sampler = dist.build_sampler(ds, shuffle=True, seed=args.seed, drop_last=True)
    batch = dist.per_process_batch(args.detector_batch_size, "--detector-batch-size")
    loader = DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=args.workers, collate_fn=collate, drop_last=True)
    if len(loader) == 0:
        raise ValueError(f"{len(ds)} training boxes < --detector-batch-size {args.detector_batch_size}")
    model = build_detector(args.detector, args.detector_weights, args.detector_min_size, args.detector_max_size,
                           args.detector_proposals, args.detector_rois)
    model = dist.wrap_model(model, device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=args.detector_lr, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [max(1, math.ceil(0.75 * args.detector_epochs))], 0.1)
    start = 0
    if resume_from is not None:
        start = ckpt_lib.resume(resume_from, model, optimizer, scheduler, map_location=device)["epoch"] + 1
        logger.info("detector resumed from %s at epoch %d", resume_from, start)
    writer = log.JsonlWriter(run_dir / "metrics.jsonl")
    for epoch in range(start, args.detector_epochs):
        dist.set_epoch(sampler, epoch)
        stats = train_detector_epoch(model, loader, optimizer, device, epoch, args.print_freq)
        scheduler.step()
        writer.write({"epoch": epoch, **{f"train_{k}": v for k, v in stats.items()}})
        logger.info("detector epoch %d: loss %.4f", epoch, stats["loss"])
        state = ckpt_lib.training_state(model, optimizer, scheduler, epoch=epoch, args=args)
        ckpt_lib.save_checkpoint(state, run_dir / "checkpoint_last.pt")

    gallery = data.splits["gallery"].files
    found = detect(dist.unwrap(model), data.root, gallery, device, data.variant, workers=args.workers)
    out = run_dir / clothes_lib.BOX_FILE
    if dist.is_main():
        det, scores = found
        missing = np.isnan(det).any(axis=1)
        fixed = clothes_lib.fixed_boxes(data.root, [f for f, m in zip(gallery, missing) if m], data.variant, args.fixed_box)
        result = {f: (fixed[f] if m else [float(v) for v in b]) for f, b, m in zip(gallery, det, missing)}
        clothes_lib.write_box_file(out, result, "detector", fallback=[f for f, m in zip(gallery, missing) if m],
                                   scores={f: float(s) for f, s in zip(gallery, scores)})
        report = {"train_boxes": len(files), "train_without_box": skipped, "gallery_images": len(gallery),
                  "no_detection": int(missing.sum()), "box_file": str(out)}
        ref = clothes_lib.parsing_boxes(data.root, gallery, args.clothes_ids, required=False)
        if ref:
            iou = box_iou(np.asarray([result[f] for f in ref]), np.asarray(list(ref.values())))
            report.update({"gallery_with_parsing": len(ref), "mean_iou": float(iou.mean()),
                           "iou50_recall": float((iou >= 0.5).mean())})
        (run_dir / "results.json").write_text(json.dumps(report, indent=2))
        logger.info("clothes boxes: %s", json.dumps(report))
    dist.barrier()
    return out


def main(args):
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    log.setup_logging()
    try:
        data = build.build_data(args, splits=("train", "gallery"))
        return run_detection(args, data, device)
    finally:
        dist.cleanup()


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
