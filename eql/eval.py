"""EQL inference and evaluation: checkpoint -> LVIS results JSON -> box (and mask) AP with the LVIS
protocol (``eql.lvis_eval``: AP, APr / APc / APf, AR@300, per-category AP) -> results.json.

    python eval.py [--config configs/toy.yaml] [--checkpoint runs/eql/.../checkpoint_last.pt]
                   [--data-root D] [--out-dir DIR]

Without --checkpoint the last checkpoint of the newest run of the config is used (with the toy
config's ``compare: [sigmoid, eql]``, one per loss: runs ``<config>-<loss>``); results go to
``<run>/eval_<checkpoint>/`` (``lvis_results.json``, ``results.json``), so the training run's own
results stay as they were. Under torchrun each rank infers its shard of the images and evaluates its
share of the categories (``eql.evaluation``); all ranks write the results file together, rank 0
writes results.json. fp32 unless --amp (bf16 autocast on CUDA, opt-in).
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from eql import build
from eql.engine import evaluate_split, format_metrics, random_baseline
from shared import checkpoint as ckpt_lib
from shared import config, dist, run
from shared.device import resolve_device, use_amp
from shared.log import setup_logging

log = logging.getLogger("eql")
HERE = Path(__file__).resolve().parent


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("EQL evaluation", add_help=add_help)
    config.add_runtime_args(p, toy_config=HERE / "configs" / "toy.yaml", train=False)
    build.add_data_args(p)
    build.add_model_args(p)
    build.add_loss_args(p)
    build.add_optim_args(p)  # accepted so that training configs load; --eval-batch-size, --threads are used
    p.add_argument("--checkpoint", default="", help="checkpoint file; default: checkpoint_last.pt of the newest run "
                   "of this config (checkpoint_best.pt is chosen on the evaluated split: optimistic)")
    p.add_argument("--out-dir", default="", help="where results go; default: <run>/eval_<checkpoint name>/")
    return p


def evaluate_checkpoint(args, device, quiet: bool = False) -> dict:
    path = run.find_checkpoint(args, "eql", name=build.sub_run(args))
    ckpt = ckpt_lib.load_checkpoint(path)
    for k in build.MODEL_KEYS:  # the architecture is the checkpoint's, whatever the flags say
        if k in ckpt.get("args", {}):
            setattr(args, k, ckpt["args"][k])
    data = build.build_data(args, splits=("val",))
    model = build.build_model(args, data).to(device)
    model.load_state_dict(ckpt["model"])   # also restores the loss buffers (freq_info, EQLv2 statistics)
    out_dir = Path(args.out_dir) if args.out_dir else path.parent / f"eval_{path.stem}"
    metrics = evaluate_split(model, data, device, args, out_dir, amp=use_amp(args, device))
    metrics["baseline_random"] = random_baseline(data, n=args.detections_per_img, seed=args.seed)
    if dist.is_main():
        results = {"dataset": args.dataset if args.data_root else "toy", "config": config.config_name(args),
                   "loss": args.loss, "checkpoint": str(path), "iteration": ckpt.get("step"), "metrics": metrics}
        (out_dir / "results.json").write_text(json.dumps(results, indent=2))
        if not quiet:
            print(format_metrics({f"{args.loss} (box)": metrics["bbox"], "random boxes": metrics["baseline_random"]},
                                 ("AP", "AP50", "APr", "APc", "APf")))
            if "segm" in metrics:
                print(format_metrics({f"{args.loss} (mask)": metrics["segm"]}, ("AP", "APr", "APc", "APf")))
            print(f"results: {out_dir / 'results.json'}\nLVIS results file: {out_dir / 'lvis_results.json'}")
    return metrics


def main(args):
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    setup_logging()
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    try:
        if not args.compare or args.checkpoint:
            return evaluate_checkpoint(args, device)
        out = {}
        for loss in args.compare:
            out[loss] = evaluate_checkpoint(build.compare_args(args, loss), device, quiet=True)
        if dist.is_main():
            rows = {loss: m["bbox"] for loss, m in out.items()}
            rows["random boxes"] = out[args.compare[0]]["baseline_random"]
            print(format_metrics(rows, ("AP", "AP50", "APr", "APc", "APf")))
        return out
    finally:
        dist.cleanup()


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
