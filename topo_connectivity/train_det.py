"""Train and evaluate the COCO detector (Faster R-CNN + FPN) on a TopoNet backbone.

    cd topo_connectivity && python train_det.py --config configs/toy_det.yaml     # toy COCO set
    python train_det.py --config configs/coco_r50_learned.yaml --data-root /datasets/coco \\
        --backbone-checkpoint ../runs/topo_connectivity/resnet50_learned/<ts>/checkpoint_last.pt
    torchrun --nproc_per_node 8 train_det.py --config configs/coco_r50_learned.yaml ...

Recipe (torchvision's detection reference; the paper gives none): 26 epochs, SGD momentum 0.9,
lr 0.02 for a global batch of 16 images, weight decay 1e-4, x0.1 at epochs 16 and 22, linear
warm-up over 1000 iterations from 0.001, horizontal flips, shorter side 800 (max 1333), frozen BN,
stem and first stage frozen. The backbone is the network a train.py checkpoint holds (its pruned
graph included); without `--backbone-checkpoint` it is built from the model flags, untrained.
Writes `detections_val2017.json` (COCO results format) and `results.json` (AP, AP50, AP75, APs,
APm, APl in percent, skipped_images, dropped_boxes).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from shared import checkpoint as ckpt_lib
from shared import config, dist, log, run
from shared.device import resolve_device, use_amp
from shared.rng import rng_isolated
from topo_connectivity import toy
from topo_connectivity.build import build_from_graph
from topo_connectivity.data import DataError, shard
from topo_connectivity.det_data import collate_det, load_coco
from topo_connectivity.detector import build_detector
from topo_connectivity.engine_det import evaluate, train_one_epoch
from topo_connectivity.train import HERE, PAPER, add_model_args, model_from_args

logger = logging.getLogger(PAPER)


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("TopoNet COCO detection", add_help=add_help, description=__doc__.split("\n")[0])
    config.add_runtime_args(p, toy_config=HERE / "configs" / "toy_det.yaml")
    g = p.add_argument_group("data")
    g.add_argument("--data-root", default="", help="COCO root with annotations/ train2017/ val2017/ (default: toy set)")
    g.add_argument("--toy-root", default="", help="where the toy data lives (default: <repo>/data/toy/topo_connectivity)")
    g.add_argument("--train-split", default="train2017", help="training split name")
    g.add_argument("--val-split", default="val2017", help="evaluation split name")
    g.add_argument("--train-subset", type=int, default=0, help="train on the first N image ids only (0: all)")
    g.add_argument("--val-subset", type=int, default=0, help="evaluate the first N image ids only (0: all)")
    add_model_args(p)
    g = p.add_argument_group("detector")
    g.add_argument("--backbone-checkpoint", default="", help="a train.py checkpoint: its network (graph and weights)")
    g.add_argument("--trainable-stages", type=int, default=3, help="stages trained (the last ones); stem always frozen")
    g.add_argument("--freeze-bn", action=argparse.BooleanOptionalAction, default=True,
                   help="FrozenBatchNorm2d in the backbone (off for a backbone trained from scratch)")
    g.add_argument("--fpn-channels", type=int, default=256, help="FPN width")
    g.add_argument("--min-size", type=int, nargs="+", default=[800], help="shorter side (several: drawn per batch)")
    g.add_argument("--max-size", type=int, default=1333, help="longer side cap")
    g.add_argument("--anchor-sizes", type=int, nargs="+", default=[32, 64, 128, 256, 512], help="one per FPN level")
    g.add_argument("--rpn-pre-nms-train", type=int, default=2000, help="RPN proposals before NMS, per level (train)")
    g.add_argument("--rpn-post-nms-train", type=int, default=2000, help="RPN proposals kept (train)")
    g.add_argument("--rpn-pre-nms-test", type=int, default=1000, help="RPN proposals before NMS, per level (test)")
    g.add_argument("--rpn-post-nms-test", type=int, default=1000, help="RPN proposals kept (test)")
    g.add_argument("--roi-batch-size", type=int, default=512, help="RoIs sampled per image")
    g.add_argument("--box-head-dim", type=int, default=1024, help="width of the two-layer box head")
    g = p.add_argument_group("schedule")
    g.add_argument("--batch-size", type=int, default=16, help="global batch (images, split over processes)")
    g.add_argument("--eval-batch-size", type=int, default=8, help="global evaluation batch")
    g.add_argument("--epochs", type=int, default=26, help="training epochs")
    g.add_argument("--lr", type=float, default=0.02, help="learning rate for the global batch")
    g.add_argument("--lr-steps", type=int, nargs="+", default=[16, 22], help="epochs at which lr is multiplied by gamma")
    g.add_argument("--lr-gamma", type=float, default=0.1, help="step decay factor")
    g.add_argument("--warmup-iters", type=int, default=1000, help="linear warm-up iterations")
    g.add_argument("--warmup-factor", type=float, default=0.001, help="warm-up start factor")
    g.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    g.add_argument("--weight-decay", type=float, default=1e-4, help="weight decay")
    g.add_argument("--print-freq", type=int, default=20, help="progress-bar refresh, iterations")
    g.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    g.add_argument("--die-after-epoch", type=int, default=-1, help="SIGKILL after this epoch's checkpoint (tests)")
    return p


def coco_root(args) -> Path:
    if args.data_root:
        root = Path(args.data_root)
        if not root.is_dir():
            raise DataError(f"--data-root {root}: no such folder")
        return root
    return toy.ensure(args.toy_root) / "coco"


def build_backbone(args, num_classes_cls: int = 1000):
    """The TopoNet of --backbone-checkpoint (graph + weights), else a fresh one from the flags."""
    if args.backbone_checkpoint:
        state = ckpt_lib.load_checkpoint(args.backbone_checkpoint)
        if "graph" not in state or "model" not in state:
            raise ckpt_lib.CheckpointError(f"{args.backbone_checkpoint}: not a topo_connectivity train.py checkpoint")
        net = build_from_graph(state["graph"])
        net.load_state_dict(state["model"])
        logger.info("backbone: %s (%s wiring) from %s", state["graph"]["model"], state["graph"].get("wiring"),
                    args.backbone_checkpoint)
        return net
    logger.warning("no --backbone-checkpoint: the backbone starts untrained (the paper starts from ImageNet)")
    return model_from_args(args, num_classes_cls)


def main(args):
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    run_dir, resume_from = run.resolve_run_dir(args, PAPER)
    log.setup_logging(run_dir)
    config.save_config(args, run_dir / "config.yaml")
    log.run_info(args, run_dir)

    root = coco_root(args)
    train_ds = load_coco(root, args.train_split, args.train_subset, train=True)
    val_ds = load_coco(root, args.val_split, args.val_subset, train=False)
    if train_ds.split.cat_ids != val_ds.split.cat_ids:
        raise DataError(f"{root}: the categories of {args.train_split} and {args.val_split} differ")
    per, per_eval = dist.per_process_batch(args.batch_size), dist.per_process_batch(args.eval_batch_size,
                                                                                   "--eval-batch-size")
    sampler = dist.build_sampler(train_ds, shuffle=True, seed=args.seed, drop_last=True)
    train_loader = DataLoader(train_ds, batch_size=per, sampler=sampler, num_workers=args.workers, drop_last=True,
                              collate_fn=collate_det, persistent_workers=args.workers > 0)
    val_loader = DataLoader(shard(val_ds, dist.rank(), dist.world_size()), batch_size=per_eval, shuffle=False,
                            num_workers=args.workers, collate_fn=collate_det)
    if len(train_loader) == 0:
        raise DataError(f"{root / args.train_split}: {len(train_ds)} images, fewer than one global batch")

    torch.manual_seed(args.seed)
    model = build_detector(build_backbone(args), len(train_ds.split.cat_ids), trainable_stages=args.trainable_stages,
                           freeze_bn=args.freeze_bn, fpn_channels=args.fpn_channels, min_size=args.min_size,
                           max_size=args.max_size, anchor_sizes=args.anchor_sizes,
                           rpn_pre_nms_top_n_train=args.rpn_pre_nms_train, rpn_post_nms_top_n_train=args.rpn_post_nms_train,
                           rpn_pre_nms_top_n_test=args.rpn_pre_nms_test, rpn_post_nms_top_n_test=args.rpn_post_nms_test,
                           box_batch_size_per_image=args.roi_batch_size, box_head_dim=args.box_head_dim)
    dist.seed_everything(args.seed)
    model = dist.wrap_model(model, device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    start = 0
    if resume_from is not None:
        state = ckpt_lib.resume(resume_from, model, optimizer, map_location=device)
        start = state["epoch"] + 1
        logger.info("resumed from %s at epoch %d", resume_from, start)
    amp, eval_amp = use_amp(args, device), use_amp(args, device, evaluation=True)
    writer = log.JsonlWriter(run_dir / "metrics.jsonl")
    for epoch in range(start, args.epochs):
        t0 = time.perf_counter()
        dist.set_epoch(sampler, epoch)
        stats = train_one_epoch(model, train_loader, optimizer, device, epoch, args, amp)
        writer.write({"epoch": epoch, **stats, "seconds": time.perf_counter() - t0})
        logger.info("det epoch %d: loss %.4f (%.0fs)", epoch, stats["loss"], time.perf_counter() - t0)
        state = ckpt_lib.training_state(model, optimizer, epoch=epoch, args=args)
        ckpt_lib.save_checkpoint(state, run_dir / "checkpoint_last.pt")
        dist.barrier()
        if epoch == args.die_after_epoch:
            os.kill(os.getpid(), signal.SIGKILL)

    with rng_isolated(device):
        stats, dets = evaluate(model, val_loader, val_ds.split, device, eval_amp)
    if dist.is_main():
        (run_dir / "detections_val2017.json").write_text(json.dumps(dets))
        results = {"config": config.config_name(args), **stats, "val_images": len(val_ds),
                   "skipped_images": train_ds.split.skipped_images + val_ds.split.skipped_images,
                   "dropped_boxes": train_ds.split.dropped_boxes + val_ds.split.dropped_boxes,
                   "backbone_checkpoint": args.backbone_checkpoint or None, "epochs": args.epochs, "seed": args.seed,
                   "run_dir": str(run_dir)}
        (run_dir / "results.json").write_text(json.dumps(results, indent=2))
        writer.write({"epoch": args.epochs - 1, **{f"val_{k}": v for k, v in stats.items()}})
        print("COCO box AP: " + "  ".join(f"{k} {v:.1f}" for k, v in stats.items()) +
              f" | {len(val_ds)} val images, {results['skipped_images']} skipped, {results['dropped_boxes']} boxes dropped")
        print(f"results: {run_dir / 'results.json'}")
    dist.cleanup()
    return run_dir, stats


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
