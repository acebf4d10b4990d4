"""Evaluate a trained detector: checkpoint -> ``predictions.csv`` and Kaggle ``submission.csv`` -> the Open
Images Challenge 2019 metric (``metrics.csv``, official keys) -> ``results.json`` (percent: mAP,
mAP_rare, mAP_multilabel, per_class_AP).

    cd openimages_det && python eval.py                        # the toy runs of make openimages_det-train
    python eval.py --config configs/oid_full.yaml --data-root /datasets/openimages [--split test]
    torchrun --nproc_per_node 8 eval.py --checkpoint runs/.../checkpoint_last.pt --data-root ...

The architecture, class list and training statistics come from the checkpoint; the inference settings
(--test-score, --emit-ancestors, --score-thresh, ...) from the config and the command line.
Inference runs in fp32 unless --amp. ``--split test`` writes predictions and the submission only (the
test annotations are not used). Without --checkpoint, every variant the config trains (``variants:``)
is evaluated from its newest run.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from types import SimpleNamespace

import torch

from openimages_det import build, engine
from openimages_det.oid_eval import write_metrics_csv
from shared import config, dist, log, run
from shared.checkpoint import load_checkpoint
from shared.device import resolve_device, use_amp

HERE = Path(__file__).resolve().parent
logger = logging.getLogger("openimages_det")
INFERENCE_KEYS = ("test_score", "emit_ancestors", "score_thresh", "nms_thresh", "detections_per_img", "min_size",
                  "max_size", "rpn_pre_nms_test", "rpn_post_nms_test")


def get_args_parser(add_help=True):
    """The training parser (so that the same --config files parse) plus the evaluation options. The
    architecture is read from the checkpoint; the inference options (INFERENCE_KEYS) from here."""
    p = argparse.ArgumentParser("openimages_det evaluation", add_help=add_help)
    config.add_runtime_args(p, toy_config=HERE / "configs" / "toy.yaml", train=False)
    build.add_data_args(p)
    build.add_model_args(p)
    build.add_sampling_args(p)
    build.add_optim_args(p)
    build.add_report_args(p)
    g = p.add_argument_group("evaluation")
    g.add_argument("--checkpoint", default="", help="checkpoint file (default: the newest run of the config, "
                   "one per --variants entry)")
    g.add_argument("--split", default="validation", choices=["validation", "test"], help="split to predict")
    g.add_argument("--out-dir", default="", help="output folder (default: <checkpoint folder>/eval-<split>)")
    return p


def model_args(ckpt: dict, args) -> SimpleNamespace:
    """The checkpoint's training arguments with this run's inference settings on top."""
    trained = dict(ckpt["args"])
    trained.update({key: getattr(args, key) for key in INFERENCE_KEYS})
    trained["pretrained"] = "none"          # the weights come from the checkpoint
    return SimpleNamespace(**trained)


def evaluate_checkpoint(ckpt_path: Path, args, device) -> dict | None:
    ckpt = load_checkpoint(ckpt_path)
    for key in ("args", "class_names", "stats", "model"):
        if key not in ckpt:
            raise KeyError(f"{ckpt_path}: not a checkpoint of openimages_det/train.py (no {key!r})")
    margs = model_args(ckpt, args)
    split = args.split
    data = build.build_data(args, splits=(split,))
    if list(data["class_names"]) != list(ckpt["class_names"]):
        raise ValueError(f"{ckpt_path}: trained on {len(ckpt['class_names'])} classes that differ from the "
                         f"{len(data['class_names'])} of {data['files'][split]['classes']}")
    model = build.build_model(margs, data["class_names"], data["hierarchy"])
    model.load_state_dict(ckpt["model"])
    model.to(device)
    out_dir = Path(args.out_dir) if args.out_dir else ckpt_path.parent / f"eval-{split}"
    key = "val" if split == "validation" else "test"
    inf = engine.infer_to_csv(model, data[key], device, out_dir, data["class_names"], batch_size=args.eval_batch_size,
                              amp=use_amp(args, device, evaluation=True), workers=args.workers)
    if not dist.is_main():
        return None
    results = {"checkpoint": str(ckpt_path), "split": split, "test_score": build.test_score(margs),
               "emit_ancestors": margs.emit_ancestors, "predictions": str(inf["predictions"]),
               "submission": str(inf["submission"]), "detections": inf["detections"], "images": inf["images"]}
    if split == "validation":
        res = engine.evaluate_predictions(inf["predictions"], data["val_boxes"], data["val_labels"],
                                          data["class_names"], data["hierarchy"], ckpt["stats"], args)
        write_metrics_csv(res.pop("official"), out_dir / "metrics.csv")
        results.update(res)
        print(f"{ckpt_path}: mAP {res['mAP']:.2f}  mAP_rare {res.get('mAP_rare', float('nan')):.2f}  "
              f"mAP_multilabel {res.get('mAP_multilabel') or float('nan'):.2f}  ({res['classes_evaluated']} classes)")
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    print(f"predictions: {inf['predictions']}\nsubmission: {inf['submission']}")
    return results


def main(args):
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    log.setup_logging()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.checkpoint or not args.variants:
            return {"": evaluate_checkpoint(run.find_checkpoint(args, build.PAPER), args, device)}
        return {v: evaluate_checkpoint(run.find_checkpoint(args, build.PAPER, name=v), args, device)
                for v in args.variants}
    finally:
        dist.cleanup()


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
