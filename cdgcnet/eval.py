"""Evaluate a checkpoint (whole / sliding-window / multi-scale + flip), or score prediction PNGs.

    cd cdgcnet && python eval.py                       # toy: the newest toy-cdgc and toy-plain runs
    python eval.py --config configs/cityscapes.yaml --data-root /datasets/cityscapes --mode ms_flip
    python eval.py --checkpoint runs/.../checkpoint_last.pt --data-root D --split test --save-pred preds/
    python eval.py --data-root /datasets/cityscapes --split val --pred-dir preds/ --out r.json   # no model

Metrics come only from ``shared.metrics.segmentation.ConfusionMatrix`` (cityscapesScripts
semantics: a void prediction at a labelled pixel is a false negative), in percent: ``miou``,
per-class ``iou``, ``aacc``, ``macc``, ``category_miou`` (Cityscapes), with ``mode``, ``scales``,
``flip``, ``split`` and ``num_images``. Predictions are written in the dataset's native ids
(Cityscapes labelIds as ``<city>_<seq>_<frame>_leftImg8bit.png``, what cityscapesScripts and the
test server read). ``--pred-dir`` scores such PNGs without a model: each ground truth's prediction
is found as cityscapesScripts finds it (a file whose name contains ``<city>_<seq>_<frame>``; VOC
and COCO-Stuff: ``<name>.png``); a missing or ambiguous one is an error naming it.
Evaluation runs in fp32 unless ``--amp``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

import torch

from cdgcnet import build
from cdgcnet.data import read_png
from cdgcnet.engine import evaluate, summarize
from shared import checkpoint as ckpt_lib
from shared import config, dist, log, run
from shared.device import resolve_device, use_amp
from shared.metrics.segmentation import ConfusionMatrix

logger = logging.getLogger("cdgcnet")


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("CDGCNet evaluation", add_help=add_help)
    config.add_runtime_args(p, toy_config=build.TOY_CONFIG, train=False)
    build.add_args(p)
    g = p.add_argument_group("evaluation")
    g.add_argument("--checkpoint", default="", help="checkpoint file (default: the newest run of this config)")
    g.add_argument("--split", default="", help="split to evaluate (default: --val-split); test: predictions only")
    g.add_argument("--save-pred", default="", help="write each prediction as a PNG (native ids) in this folder")
    g.add_argument("--out", default="", help="results JSON (default: <run folder>/eval_<split>_<mode>.json)")
    g.add_argument("--pred-dir", default="", help="score the PNGs in this folder instead of running a model")
    g.add_argument("--pred-format", default="labelIds", choices=["labelIds", "trainIds"],
                   help="--pred-dir encoding: the dataset's native ids (Cityscapes labelIds) or train ids")
    return p


def _write(results: dict, path) -> None:
    if dist.is_main():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(results, indent=1) + "\n")


def prediction_index(pred_dir) -> dict[str, list[Path]]:
    """File name -> paths of every PNG under `pred_dir` (recursively, as cityscapesScripts walks it)."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise FileNotFoundError(f"--pred-dir {pred_dir}: no such folder")
    index: dict[str, list[Path]] = {}
    for dirpath, _, files in os.walk(pred_dir):
        for f in files:
            if f.endswith(".png"):
                index.setdefault(f, []).append(Path(dirpath) / f)
    return index


def find_prediction(index: dict, source, rec, pred_dir) -> Path:
    if source.name == "cityscapes":  # cityscapesScripts: the one *<city>_<seq>_<frame>*.png
        exact = [p for name, paths in index.items() if rec.name in name for p in paths]
    else:
        exact = index.get(f"{rec.name}{source.pred_suffix}", [])
    if not exact:
        raise FileNotFoundError(f"--pred-dir {pred_dir}: no prediction for {rec.label} "
                                f"(expected {rec.name}{source.pred_suffix})")
    if len(exact) > 1:
        raise ValueError(f"--pred-dir {pred_dir}: several predictions for {rec.name}: {[str(p) for p in exact[:4]]}")
    return exact[0]


def score_pred_dir(args, split: str) -> dict:
    source = build.build_source_only(args)
    records = source.records(split)
    if any(r.label is None for r in records):
        raise ValueError(f"split {split!r} has no ground truth to score --pred-dir against")
    index = prediction_index(args.pred_dir)
    cm = ConfusionMatrix(source.num_classes, 255)
    for rec in records[dist.rank()::dist.world_size()]:
        path = find_prediction(index, source, rec, args.pred_dir)
        gt = source.read_label(rec.label)
        pred = source.from_native(read_png(path), path, args.pred_format)
        if pred.shape != gt.shape:
            raise ValueError(f"{path}: prediction size {pred.shape} differs from its ground truth {rec.label} {gt.shape}")
        cm.update(pred, gt)
    cm.all_reduce()
    return summarize(cm.compute(categories=source.categories), source.classes, mode="pred_dir", scales=None,
                     flip=None, split=split, num_images=len(records), pred_dir=str(args.pred_dir),
                     pred_format=args.pred_format)


def checkpoints(args) -> list[tuple[str | None, Path]]:
    if args.checkpoint:
        return [(None, run.find_checkpoint(args, "cdgcnet"))]
    names = args.compare or [None]
    return [(n, run.find_checkpoint(args, "cdgcnet", name=n, hint="train first (make cdgcnet-train) or pass "
                                    "--checkpoint")) for n in names]


def evaluate_checkpoint(args, path: Path, device, split: str) -> dict:
    ckpt = ckpt_lib.load_checkpoint(path, map_location="cpu")
    if "model" not in ckpt or "args" not in ckpt:
        raise ckpt_lib.CheckpointError(f"{path}: not a cdgcnet training checkpoint (needs 'model' and 'args')")
    margs = argparse.Namespace(**{**vars(args), **{k: ckpt["args"][k] for k in build.MODEL_KEYS if k in ckpt["args"]}})
    margs.pretrained = ""  # the checkpoint holds every weight
    data = build.build_data(argparse.Namespace(**{**vars(args), "val_split": split}), train=False)
    model = build.build_model(margs, data["source"].num_classes)
    model.load_state_dict(ckpt["model"])
    model.to(device)
    res = evaluate(model, data["val"], device, mode=args.eval_mode, crop=args.crop_size, stride=args.eval_stride,
                   scales=args.scales, flip=args.flip, amp=use_amp(args, device, evaluation=True),
                   save_pred=args.save_pred or None, workers=args.workers, print_freq=args.print_freq, split=split)
    return {"checkpoint": str(path), "step": ckpt.get("step"), "cdgc": margs.cdgc, **res}


def main(args):
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    if args.threads:
        torch.set_num_threads(args.threads)
    log.setup_logging()
    split = args.split or args.val_split
    try:
        if args.pred_dir:
            res = score_pred_dir(args, split)
            _write(res, args.out or Path(args.pred_dir) / f"eval_{split}.json")
            if dist.is_main():
                print(f"{split}: mIoU {res['miou']:.2f} over {res['num_images']} images ({args.pred_dir})")
            return {None: res}
        out = {}
        ckpts = checkpoints(args)
        for name, path in ckpts:
            res = evaluate_checkpoint(args, path, device, split)
            if not args.out:
                dest = path.parent / f"eval_{split}_{args.eval_mode}.json"
            else:  # several runs (--compare): <out>-<arm>.json
                dest = Path(args.out) if len(ckpts) == 1 else Path(args.out).with_name(
                    f"{Path(args.out).stem}-{name}{Path(args.out).suffix}")
            _write(res, dest)
            if dist.is_main():
                msg = f"mIoU {res['miou']:.2f}" if "miou" in res else f"{res['num_images']} predictions -> {args.save_pred}"
                print(f"{name or path.parent.parent.name} ({split}, {args.eval_mode}): {msg}; {dest}")
            out[name] = res
        return out
    finally:
        dist.cleanup()


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
