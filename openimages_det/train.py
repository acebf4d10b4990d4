"""Train the Open Images detector (concurrent softmax, soft-balance sampling, hybrid scheduler), then
evaluate it with the Open Images Challenge 2019 metric.

    cd openimages_det && python train.py          # toy data: softmax, concurrent and full side by side
    python train.py --config configs/oid_full.yaml --data-root /datasets/openimages
    torchrun --nproc_per_node 8 train.py --config configs/oid_full.yaml --data-root /datasets/openimages

Reading order of ``train_one``: run folder, data (every annotation file and image checked before the
first iteration), the concurrent rates and the model, SGD with warm-up and steps, resume, the epoch
loop (checkpoint at the end of every epoch and every --checkpoint-period iterations), the final
evaluation: ``predictions.csv``, ``submission.csv``, ``metrics.csv`` (the official keys) and
``results.json`` (percent: mAP, mAP_rare, mAP_multilabel, per-class AP, the random-box baseline).
``--variants softmax concurrent full`` trains one model per variant (run names ``<config>-<variant>``).
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from openimages_det import build, engine
from openimages_det.data import collate
from openimages_det.oid_eval import write_metrics_csv
from openimages_det.sampler import TrainingBatchSampler
from shared import checkpoint as ckpt_lib
from shared import config, dist, log, run
from shared.device import resolve_device, use_amp
from shared.rng import rng_isolated

HERE = Path(__file__).resolve().parent
logger = logging.getLogger("openimages_det")
HEADLINE = ("mAP", "mAP_rare", "mAP_multilabel")


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("openimages_det training", add_help=add_help)
    config.add_runtime_args(p, toy_config=HERE / "configs" / "toy.yaml", train=True)
    build.add_data_args(p)
    build.add_model_args(p)
    build.add_sampling_args(p)
    build.add_optim_args(p)
    build.add_report_args(p)
    return p


def check_args(args) -> None:
    if args.epochs < 1 or args.batch_size < 1:
        raise ValueError("--epochs and --batch-size must be positive")
    if not 0 < args.concurrent_iou <= 1:
        raise ValueError("--concurrent-iou is an IoU in (0, 1]")
    if args.soft_lambda < 0:
        raise ValueError("--soft-lambda must be >= 0")
    if args.loss == "sigmoid" and build.test_score(args) != "sigmoid":
        raise ValueError("the sigmoid loss trains no softmax: use --test-score sigmoid (or auto)")


def main(args):
    """Train one model, or one per --variants; returns (run_dir, results) or {variant: (run_dir, results)}."""
    check_args(args)
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if not args.variants:
            return train_one(args, device)
        runs = {}
        for variant in args.variants:
            sub = copy.copy(args)
            vars(sub).update(build.VARIANTS[variant], variants=[])
            check_args(sub)
            runs[variant] = train_one(sub, device, name=variant, quiet=True)
        if dist.is_main():
            base = config.config_name(args)
            rows = {f"{v} ({base}-{v})": r for v, (_, r) in runs.items()}
            first = next(iter(runs.values()))[1]
            if first.get("baseline_random"):
                rows["random boxes"] = first["baseline_random"]
            print("\nOpen Images Challenge metric on the validation split (percent):")
            print(format_table(rows))
            print(f"baseline_random_mAP: {first.get('baseline_random_mAP')}")
            for v, (run_dir, _) in runs.items():
                print(f"{v}: {run_dir / 'results.json'}")
        return runs
    finally:
        dist.cleanup()


def format_table(rows: dict, keys=HEADLINE) -> str:
    lines = ["| | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, m in rows.items():
        lines.append(f"| {name} | " + " | ".join("—" if m.get(k) is None else f"{m[k]:.2f}" for k in keys) + " |")
    return "\n".join(lines)


def train_one(args, device, name: str | None = None, quiet: bool = False):
    t_start = time.perf_counter()
    run_dir, resume_from = run.resolve_run_dir(args, build.PAPER, name=name)
    log.setup_logging(run_dir)
    config.save_config(args, run_dir / "config.yaml")
    log.run_info(args, run_dir)
    dist.seed_everything(args.seed)
    if args.backbone != "tiny" and args.pretrained in ("", "none"):
        logger.warning("%s without pretrained weights: the paper's runs start from ImageNet weights", args.backbone)

    data = build.build_data(args)
    class_names, hierarchy = data["class_names"], data["hierarchy"]
    model = build.build_model(args, class_names, hierarchy, data["rates"])
    model = dist.wrap_model(model, device)
    dist.per_process_batch(args.batch_size)   # logs the split; the sampler slices each global batch
    sampler = TrainingBatchSampler(data["records"].class_images(), args.batch_size, sampling=args.sampling,
                                   soft_lambda=args.soft_lambda, hybrid=args.hybrid, switch_at=args.switch_at,
                                   natural_share=args.natural_share, hflip_prob=args.hflip_prob, seed=args.seed,
                                   rank=dist.rank(), world_size=dist.world_size())
    # the loader's own generator: creating an iterator must not draw from the global RNG (exact resume)
    loader = DataLoader(data["train"], batch_sampler=sampler, num_workers=args.workers, collate_fn=collate,
                        generator=torch.Generator().manual_seed(args.seed + dist.rank()))
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=args.lr,
                                momentum=args.momentum, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, build.lr_lambda(args, sampler.batches_per_epoch))
    epoch, batch, step = 0, 0, 0
    if resume_from is not None:
        state = ckpt_lib.resume(resume_from, model, optimizer, scheduler)
        epoch, batch, step = state["next_epoch"], state["next_batch"], state["step"]
        logger.info("resumed from %s: epoch %d, batch %d, step %d", resume_from, epoch, batch, step)
    logger.info("%d iterations per epoch of %d images; loss %s, test score %s, sampling %s (lambda %g), hybrid %s",
                sampler.batches_per_epoch, args.batch_size, args.loss, build.test_score(args), args.sampling,
                args.soft_lambda, args.hybrid)
    writer = log.JsonlWriter(run_dir / "metrics.jsonl")
    extra = {"class_names": class_names, "stats": data["stats"]}

    def save(next_epoch: int, next_batch: int, step_now: int) -> None:
        state = ckpt_lib.training_state(model, optimizer, scheduler, epoch=next_epoch - (next_batch == 0),
                                        step=step_now, args=args, next_epoch=next_epoch, next_batch=next_batch,
                                        **extra)
        ckpt_lib.save_checkpoint(state, run_dir / "checkpoint_last.pt")
        dist.barrier()

    for ep in range(epoch, args.epochs):
        sampler.set_epoch(ep, batch if ep == epoch else 0)

        def on_step(step_now, done, ep=ep):
            if args.checkpoint_period and step_now % args.checkpoint_period == 0 and done < sampler.batches_per_epoch:
                save(ep, done, step_now)
        step = engine.train_one_epoch(model, loader, optimizer, scheduler, device, ep, step, args, writer, on_step)
        save(ep + 1, 0, step)

    with rng_isolated(device):
        inf = engine.infer_to_csv(dist.unwrap(model), data["val"], device, run_dir, class_names,
                                  batch_size=args.eval_batch_size, amp=use_amp(args, device, evaluation=True),
                                  workers=args.workers)
    results = None
    if dist.is_main():
        res = engine.evaluate_predictions(inf["predictions"], data["val_boxes"], data["val_labels"], class_names,
                                          hierarchy, data["stats"], args)
        write_metrics_csv(res.pop("official"), run_dir / "metrics.csv")
        results = {"paper": build.PAPER, "config": config.config_name(args), "variant": name,
                   "run_name": run.run_name(args, name), "dataset": args.release if not _toy(args) else "toy",
                   "loss": args.loss, "test_score": build.test_score(args), "sampling": args.sampling,
                   "soft_lambda": args.soft_lambda, "hybrid": args.hybrid, "train_labels": args.train_labels,
                   "epochs": args.epochs, "seed": args.seed, "run_dir": str(run_dir), **res,
                   "detections": inf["detections"], "images": inf["images"], "inference_seconds": inf["seconds"],
                   "train_seconds": time.perf_counter() - t_start}
        if args.baseline_random:
            base = engine.random_baseline(data["val_boxes"], data["val_labels"], class_names, hierarchy,
                                          data["stats"], args, per_image=args.baseline_random, seed=args.seed)
            base.pop("official")
            results["baseline_random_mAP"] = base["mAP"]
            results["baseline_random"] = {k: base.get(k) for k in HEADLINE}
        (run_dir / "results.json").write_text(json.dumps(results, indent=1))
        if not quiet:
            rows = {f"{args.loss} ({run.run_name(args, name)})": results}
            if args.baseline_random:
                rows["random boxes"] = results["baseline_random"]
            print(format_table(rows))
            print(f"baseline_random_mAP: {results.get('baseline_random_mAP')}")
            print(f"results: {run_dir / 'results.json'}\npredictions: {inf['predictions']}")
    return run_dir, results


def _toy(args) -> bool:
    return Path(args.data_root).resolve() == build.toy_root(args).resolve()


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
