"""Evaluate a pruned network: top-1 / top-5 on the validation split (ImageFolder), its counted
multiply-adds and parameters.

    python eval.py                                   # toy: the newest retraining of configs/toy.yaml
    python eval.py --config configs/resnet50_2.2g.yaml --data-root /datasets/imagenet     # its newest retraining
    python eval.py --checkpoint runs/dmcp/resnet50_2.2g/<ts>/pruned.pt --data-root /datasets/imagenet
    torchrun --nproc_per_node 8 eval.py --config ... --data-root ...

A checkpoint holds its arch (architecture and builder), so the network is rebuilt whatever the
flags say. Without --checkpoint: `checkpoint_last.pt` of the newest retraining of this config
(`runs/dmcp/<config>-retrain/`, written by train.py or prune.py --then-retrain). Only the
validation split is read (the training split is not scanned), in fp32 unless --amp, except for
`pruned.pt` (the supernet's weights, not retrained): its BN statistics are the supernet's, so they
are re-estimated first on --calib-batches batches of the training split. Results go to
`<checkpoint folder>/eval_<checkpoint name>/results.json`. This script only evaluates (the
official `--mode eval` sampled architectures instead).
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from dmcp import build
from dmcp.data import build_datasets, build_loaders, skipped_images
from dmcp.engine import calibrate_bn, evaluate
from dmcp.export import build_pruned
from shared import checkpoint as ckpt_lib
from shared import config, dist, run
from shared.device import resolve_device, use_amp
from shared.log import setup_logging
from shared.metrics.flops import count_madds, count_params

logger = logging.getLogger("dmcp")


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("DMCP evaluation", add_help=add_help)
    build.add_all_args(p, train=False)
    p.add_argument("--checkpoint", default="", help="retraining checkpoint or pruned.pt; default: the newest "
                   "retraining of this config")
    p.add_argument("--out-dir", default="", help="where results go; default <checkpoint folder>/eval_<name>/")
    return p


def main(args):
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    setup_logging()
    path = run.find_checkpoint(args, "dmcp", name="retrain",
                               hint="run train.py (make dmcp-train) or prune.py --then-retrain, or pass --checkpoint")
    ckpt = ckpt_lib.load_checkpoint(path, map_location="cpu")
    if "arch" not in ckpt or "model" not in ckpt:
        raise ValueError(f"{path}: not a dmcp checkpoint (needs 'model' and 'arch' entries)")
    arch = ckpt["arch"]
    args.input_size = int(arch.get("input_size", args.input_size))
    model = build_pruned(arch)
    model.load_state_dict(ckpt["model"])
    model.to(device)
    madds = count_madds(model, (1, 3, args.input_size, args.input_size))
    recalibrated = path.name == "pruned.pt"
    data = build_datasets(args, splits=("train", "val") if recalibrated else ("val",))
    loaders = build_loaders(args, data, device)
    amp = use_amp(args, device)
    if recalibrated:
        calibrate_bn(model, loaders["train"], args.calib_batches, device, amp)
    metrics = evaluate(model, loaders["val"], device, amp)
    skipped = int(sum(dist.all_gather_object(skipped_images(loaders))))
    metrics.update(madds=madds, params=count_params(model), bn_recalibrated=recalibrated, amp=amp,
                   skipped_images=skipped)
    if dist.is_main():
        out_dir = Path(args.out_dir) if args.out_dir else path.parent / f"eval_{path.stem}"
        out_dir.mkdir(parents=True, exist_ok=True)
        results = {"config": config.config_name(args), "kind": "eval", "checkpoint": str(path),
                   "epoch": ckpt.get("epoch"), "target_madds": arch.get("target_madds"), "model": args.model,
                   **metrics}
        (out_dir / "results.json").write_text(json.dumps(results, indent=2))
        print(f"{path}: {madds / 1e6:.2f} MFLOPs, {metrics['params'] / 1e6:.3f}M params, {metrics['images']} images"
              f"{f' ({skipped} unreadable, skipped)' if skipped else ''}: "
              f"top-1 {metrics['top1']:.2f} top-5 {metrics['top5']:.2f}")
        print(f"results: {out_dir / 'results.json'}")
    dist.cleanup()
    return metrics


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
