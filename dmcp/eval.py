"""Evaluate a pruned network: top-1 / top-5 on the validation split (ImageFolder), its counted
multiply-adds and parameters.

    python eval.py [--config configs/toy.yaml] [--checkpoint runs/dmcp/toy-retrain/<ts>/checkpoint_last.pt]
    python eval.py --checkpoint runs/dmcp/resnet50_2.2g/<ts>/pruned.pt --data-root /datasets/imagenet

A checkpoint holds its arch (architecture and builder), so the network is rebuilt whatever the
flags say. Without --checkpoint: the newest retraining of this config (train.py's run, else the
retraining inside a prune run). `pruned.pt` (the supernet's weights, not retrained) has BN
statistics of the supernet: they are re-estimated on --calib-batches training batches first.
Results go to `<checkpoint folder>/eval_<checkpoint name>/results.json`. This script only
evaluates (the official `--mode eval` sampled architectures instead).
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from dmcp import build
from dmcp.data import build_datasets, build_loaders
from dmcp.engine import calibrate_bn, evaluate
from dmcp.export import build_pruned
from shared import checkpoint as ckpt_lib
from shared import config, dist
from shared.device import resolve_device
from shared.log import setup_logging
from shared.metrics.flops import count_madds, count_params

logger = logging.getLogger("dmcp")


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("DMCP evaluation", add_help=add_help)
    build.add_all_args(p)
    p.add_argument("--checkpoint", default="", help="retraining checkpoint or pruned.pt; default: the newest "
                   "retraining of this config")
    p.add_argument("--out-dir", default="", help="where results go; default <checkpoint folder>/eval_<name>/")
    return p


def find_checkpoint(args) -> Path:
    if args.checkpoint:
        return Path(args.checkpoint)
    root, name = Path(args.output_dir) / "dmcp", config.config_name(args)
    candidates = [run / "checkpoint_last.pt" for run in (root / f"{name}-retrain").glob("*")]
    candidates += [run / "retrain" / "checkpoint_last.pt" for run in (root / name).glob("*")]
    found = sorted((c for c in candidates if c.is_file()), key=lambda c: c.stat().st_mtime, reverse=True)
    if not found:
        raise FileNotFoundError(f"no retraining checkpoint for config {name!r} under {root}: run "
                                f"train.py (make dmcp-train) or prune.py with --then-retrain, or pass --checkpoint")
    return found[0]


def main(args):
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    setup_logging()
    path = find_checkpoint(args)
    ckpt = ckpt_lib.load_checkpoint(path, map_location="cpu")
    if "arch" not in ckpt or "model" not in ckpt:
        raise ValueError(f"{path}: not a dmcp checkpoint (needs 'model' and 'arch' entries)")
    arch = ckpt["arch"]
    args.input_size = int(arch.get("input_size", args.input_size))
    model = build_pruned(arch)
    model.load_state_dict(ckpt["model"])
    model.to(device)
    madds = count_madds(model, (1, 3, args.input_size, args.input_size))
    data = build_datasets(args)
    loaders = build_loaders(args, data, device)
    amp = args.amp and device.type == "cuda"
    recalibrated = path.name == "pruned.pt"
    if recalibrated:
        calibrate_bn(model, loaders["train"], args.calib_batches, device, amp)
    metrics = evaluate(model, loaders["val"], device, amp)
    metrics.update(madds=madds, mflops=madds / 1e6, params=count_params(model), bn_recalibrated=recalibrated)
    if dist.is_main():
        out_dir = Path(args.out_dir) if args.out_dir else path.parent / f"eval_{path.stem}"
        out_dir.mkdir(parents=True, exist_ok=True)
        results = {"config": config.config_name(args), "kind": "eval", "checkpoint": str(path),
                   "epoch": ckpt.get("epoch"), "target_mflops": arch.get("target_mflops"), "model": args.model,
                   **metrics}
        (out_dir / "results.json").write_text(json.dumps(results, indent=2))
        print(f"{path}: {metrics['mflops']:.2f} MFLOPs (target {arch.get('target_mflops')}), "
              f"{metrics['params'] / 1e6:.3f}M params, {metrics['images']} images: "
              f"top-1 {metrics['top1']:.2f} top-5 {metrics['top5']:.2f}")
        print(f"results: {out_dir / 'results.json'}")
    dist.cleanup()
    return metrics


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
