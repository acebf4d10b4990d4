"""Evaluate a retrained ST-NAS network on val/ (top-1 / top-5, fp32 unless --amp).

    cd st_nas && python eval.py                        # the newest toy retraining
    python eval.py --config configs/st_nas_a.yaml --data-root /datasets/imagenet --checkpoint F
    torchrun --nproc_per_node 8 eval.py --data-root /datasets/imagenet --checkpoint F

The checkpoint holds the architecture and the class list; only val/ is read (its class folders
must be the checkpoint's classes). Without --checkpoint: the newest `checkpoint_last.pt` of
train.py's runs (`<config>-retrain/`) or of search.py's `--then-retrain` (`<config>/<stamp>/retrain/`).
Writes `eval.json` beside the checkpoint.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from shared import checkpoint as ckpt_lib
from shared import config, dist, log, run
from shared.device import resolve_device, use_amp
from st_nas.data import ImageList, eval_transform, load_splits, make_loader, shard
from st_nas.engine import evaluate
from st_nas.model import ChildNet
from st_nas.options import add_all_args
from st_nas.space import Skeleton, arch_from_json

logger = logging.getLogger("st_nas")
PAPER = "st_nas"


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("ST-NAS evaluation", add_help=add_help)
    p.add_argument("--checkpoint", default="", help="a retraining checkpoint (default: the newest of this config)")
    return add_all_args(p, train=False)


def find_checkpoint(args) -> Path:
    if args.checkpoint:
        return run.find_checkpoint(args, PAPER)
    name = run.run_name(args)
    root = Path(args.output_dir) / PAPER
    found = list(root.glob(f"{name}-retrain/*/checkpoint_last.pt")) + list(root.glob(f"{name}/*/retrain/checkpoint_last.pt"))
    if not found:
        raise FileNotFoundError(f"no retraining checkpoint under {root}/{name}-retrain or {root}/{name}/*/retrain: "
                                f"train first (make st_nas-train, or make st_nas-search with --then-retrain) "
                                f"or pass --checkpoint")
    return max(found, key=lambda p: p.stat().st_mtime)


def main(args):
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    log.setup_logging()
    path = find_checkpoint(args)
    ck = ckpt_lib.load_checkpoint(path, map_location="cpu")
    if "arch" not in ck or "classes" not in ck:
        raise ckpt_lib.CheckpointError(f"{path}: not an ST-NAS retraining checkpoint (no 'arch' / 'classes')")
    skeleton = Skeleton.from_dict(ck["arch"]["skeleton"])
    net = ChildNet(skeleton, arch_from_json(ck["arch"]["stages"], skeleton, where=str(path)))
    net.load_state_dict(ck["model"])
    net.to(device)
    splits = load_splits(args, train=False, val=True, classes=ck["classes"])
    folder, files = splits["val"]
    val = ImageList(folder, splits["classes"], files, eval_transform(skeleton.input_size, args.crop_ratio))
    loader = make_loader(shard(val), dist.per_process_batch(args.eval_batch_size, "--eval-batch-size"),
                         args.workers, device)
    metrics = evaluate(net, loader, device, use_amp(args, device, evaluation=True), header="eval",
                       print_freq=args.print_freq)
    metrics.update(checkpoint=str(path), madds=ck["arch"]["madds"], data=str(splits["root"]))
    if dist.is_main():
        (path.parent / "eval.json").write_text(json.dumps(metrics, indent=1) + "\n")
        print(f"{path}: top-1 {metrics['top1']:.2f}, top-5 {metrics['top5']:.2f} on {metrics['images']} images "
              f"({ck['arch']['madds'] / 1e6:.2f}M MAdds)")
    dist.cleanup()
    return metrics


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
