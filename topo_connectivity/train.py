"""Train a TopoNet on ImageNet (ImageFolder) or the toy data: all phases in one run.

    cd topo_connectivity && python train.py                                  # configs/toy.yaml
    python train.py --config configs/resnet50_learned.yaml --data-root /datasets/imagenet
    torchrun --nproc_per_node 8 train.py --config configs/toponet_learned.yaml --data-root ...

Phases (the paper, Sec. 3; schedule lengths are ours): `--epochs` of training with
L = CE + lambda * sum |w_ij| (`--l1`, learned wiring only), then, for the learned wiring, pruning of
the edges whose normalised strength is below `--prune-threshold` (and of the nodes they cut off),
then `--finetune-epochs` (no L1, cosine from `--finetune-lr`). Every other wiring runs the same two
phases without the L1 term and without pruning, so all wirings see the same schedule.

Reading order of `main`: distributed init, run folder, data checked before any work, model,
optimizer, resume (rebuilding the pruned graph when the checkpoint is past pruning), the epoch loop
(train, prune at the phase change, evaluate, atomic checkpoint), results.json, graph.json and the
adjacency heatmaps.
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

from shared import checkpoint as ckpt_lib
from shared import config, dist, log, run
from shared.device import resolve_device, use_amp
from shared.metrics.flops import count_madds, count_params
from shared.rng import rng_isolated
from topo_connectivity import toy
from topo_connectivity.build import MODELS, build_from_graph, build_model
from topo_connectivity.data import DataError, build_loaders, check_splits
from topo_connectivity.engine import evaluate, train_one_epoch
from topo_connectivity.graphs import KINDS
from topo_connectivity.loss import TopoLoss, param_groups
from topo_connectivity.pruning import count_edges, edge_sparsity, graph_record, plot_graph, prune_model

HERE = Path(__file__).resolve().parent
PAPER = "topo_connectivity"
logger = logging.getLogger(PAPER)


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data-root", default="", help="ImageNet root holding train/<wnid>/ and val/<wnid>/ "
                   "(default: the toy data, written on first use)")
    g.add_argument("--toy-root", default="", help="where the toy data lives (default: <repo>/data/toy/topo_connectivity)")
    g.add_argument("--input-size", type=int, default=224, help="training crop and evaluation crop size")
    g.add_argument("--test-resize", type=int, default=256, help="evaluation: resize the shorter side, then center crop")
    g.add_argument("--rrc-min-scale", type=float, default=0.08, help="RandomResizedCrop's smallest area fraction")
    g.add_argument("--batch-size", type=int, default=256, help="global batch (split over processes)")


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", default="resnet50", choices=MODELS, help="network family (build.py)")
    g.add_argument("--wiring", default="learned", choices=KINDS, help="stage wiring (graphs.py)")
    g.add_argument("--graph-seed", type=int, default=None, help="seed of the random wirings (default: --seed)")
    g.add_argument("--graph-params", type=json.loads, default={},
                   help='random-graph parameters as JSON, e.g. \'{"k": 4, "p": 0.75}\' (defaults: RandWire\'s)')
    g.add_argument("--train-edges", default="auto", choices=("auto", "yes", "no"),
                   help="learn the edge weights (auto: learned, complete, er/ba/ws yes; residual, chain no)")
    g.add_argument("--edge-param", default="raw", choices=("raw", "sigmoid"),
                   help="learn raw edge weights (init 1) or logits a with w = sigmoid(a) (init 0)")
    g.add_argument("--edge-lr-mult", type=float, default=1.0, help="learning-rate multiplier of the edge weights")
    g.add_argument("--channels", type=int, default=78, help="toponet: C, the width of the first stage")
    g.add_argument("--nodes", type=int, nargs="+", default=[16, 32, 32], help="toponet: nodes per stage (incl. node 0)")
    g.add_argument("--stem-strides", type=int, nargs=2, default=[2, 2], help="toponet: strides of the two stem convs")
    g.add_argument("--weights", default="", help="mobilenet_v2: torchvision weights to start from (e.g. IMAGENET1K_V1; "
                   "downloaded on first use)")
    g.add_argument("--num-classes", type=int, default=0, help="classes (default: the number of class folders)")


def add_schedule_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("schedule")
    g.add_argument("--epochs", type=int, default=90, help="epochs before pruning (with the L1 term)")
    g.add_argument("--finetune-epochs", type=int, default=10, help="epochs after pruning (no L1)")
    g.add_argument("--lr", type=float, default=0.1, help="learning rate for the global batch")
    g.add_argument("--lr-schedule", default="step", choices=("step", "exp", "cosine"), help="main-phase schedule")
    g.add_argument("--lr-step", type=float, default=30, help="step schedule: epochs between decays")
    g.add_argument("--lr-gamma", type=float, default=0.1, help="step / exp schedule: decay factor")
    g.add_argument("--warmup-epochs", type=float, default=0.0, help="linear warm-up epochs")
    g.add_argument("--finetune-lr", type=float, default=0.001, help="fine-tuning: cosine from this to 0")
    g.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    g.add_argument("--weight-decay", type=float, default=1e-4, help="weight decay (never on edge weights)")
    g.add_argument("--label-smoothing", type=float, default=0.0, help="cross-entropy label smoothing")
    g.add_argument("--l1", type=float, default=1e-4, help="lambda of the L1 term on edge weights (learned wiring)")
    g.add_argument("--prune-threshold", type=float, default=0.02,
                   help="drop an edge when |w_ij| / sum_i |w_ij| is below this (learned wiring)")
    g.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm across GPUs")
    g.add_argument("--eval-every", type=int, default=1, help="evaluate every N epochs (and at the end)")
    g.add_argument("--print-freq", type=int, default=50, help="progress-bar refresh, iterations")
    g.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    g.add_argument("--die-after-epoch", type=int, default=-1, help="SIGKILL after this epoch's checkpoint (tests)")


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("TopoNet training", add_help=add_help, description=__doc__.split("\n")[0])
    config.add_runtime_args(p, toy_config=HERE / "configs" / "toy.yaml")
    add_data_args(p)
    add_model_args(p)
    add_schedule_args(p)
    return p


def check_args(args) -> None:
    if args.epochs < 0 or args.finetune_epochs < 0 or args.epochs + args.finetune_epochs < 1:
        raise config.ConfigError(f"--epochs {args.epochs} --finetune-epochs {args.finetune_epochs}: need >= 1 in all")
    if not 0 <= args.prune_threshold < 1:
        raise config.ConfigError(f"--prune-threshold {args.prune_threshold}: must lie in [0, 1)")
    if args.l1 < 0:
        raise config.ConfigError(f"--l1 {args.l1}: must be >= 0")


def data_root(args) -> Path:
    """--data-root, or the toy ImageFolder data (written by rank 0 on first use)."""
    if args.data_root:
        root = Path(args.data_root)
        if not root.is_dir():
            raise DataError(f"--data-root {root}: no such folder")
        return root
    return toy.ensure(args.toy_root) / "imagenet"


def model_from_args(args, num_classes: int):
    kw = {"channels": args.channels, "nodes": list(args.nodes), "stem_strides": list(args.stem_strides)} \
        if args.model == "toponet" else {}
    trainable = None if args.train_edges == "auto" else args.train_edges == "yes"
    seed = args.seed if args.graph_seed is None else args.graph_seed
    return build_model(args.model, args.wiring, num_classes, seed=seed, graph_params=args.graph_params,
                       trainable=trainable, edge_param=args.edge_param, weights=args.weights or None, **kw)


def uses_l1(args) -> bool:
    return args.wiring == "learned" and args.l1 > 0


def prunes(args) -> bool:
    return args.wiring == "learned" and args.finetune_epochs > 0


def make_optimizer(model, args):
    return torch.optim.SGD(param_groups(model, args.weight_decay, args.edge_lr_mult), lr=args.lr, momentum=args.momentum)


def describe(model, args) -> dict:
    bare = dist.unwrap(model)
    total, kept = count_edges(bare)
    return {"madds": count_madds(bare, (1, 3, args.input_size, args.input_size)), "params": count_params(bare),
            "edges_total": total, "edges_kept": kept, "edge_sparsity": 1.0 - kept / max(total, 1)}


def main(args):
    check_args(args)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    run_dir, resume_from = run.resolve_run_dir(args, PAPER)
    log.setup_logging(run_dir)
    config.save_config(args, run_dir / "config.yaml")
    log.run_info(args, run_dir)

    root = data_root(args)
    scanned = check_splits(root)  # every layout error before any work
    loaders = build_loaders(args, root, scanned, device)
    classes = loaders["classes"]
    num_classes = args.num_classes or len(classes)
    if dist.is_main():
        (run_dir / "classes.json").write_text(json.dumps(classes))

    torch.manual_seed(args.seed)  # the same initial weights on every rank
    model = model_from_args(args, num_classes)
    dense = describe(model, args)
    logger.info("%s, %s wiring: %.4g MAdds, %.3fM params, %d edges", args.model, args.wiring, dense["madds"],
                dense["params"] / 1e6, dense["edges_total"])
    start, state = 0, None
    if resume_from is not None:
        state = ckpt_lib.load_checkpoint(resume_from)
        if state.get("pruned"):
            model = build_from_graph(state["graph"])
    dist.seed_everything(args.seed)
    model = dist.wrap_model(model, device, sync_bn=args.sync_bn)
    optimizer = make_optimizer(model, args)
    best = -1.0
    if state is not None:
        state = ckpt_lib.resume(resume_from, model, optimizer, map_location=device)
        start, best = state["epoch"] + 1, state.get("best_top1", -1.0)
        logger.info("resumed from %s at epoch %d", resume_from, start)

    amp, eval_amp = use_amp(args, device), use_amp(args, device, evaluation=True)
    writer = log.JsonlWriter(run_dir / "metrics.jsonl")
    total_epochs = args.epochs + args.finetune_epochs
    metrics = None
    for epoch in range(start, total_epochs):
        finetune = epoch >= args.epochs
        if epoch == args.epochs and prunes(args):  # the phase change: prune the learned graph, then fine-tune
            bare = dist.unwrap(model)
            ckpt_lib.save_checkpoint(ckpt_lib.training_state(bare, epoch=epoch - 1, args=args),
                                     run_dir / "checkpoint_dense.pt")
            info = prune_model(bare, args.prune_threshold)
            logger.info("pruned at threshold %g: %d of %d edges kept, %d nodes removed", args.prune_threshold,
                        info["edges_kept"], info["edges_total"], info["nodes_removed"])
            model = dist.wrap_model(bare, device, sync_bn=args.sync_bn)
            optimizer = make_optimizer(model, args)
        criterion = TopoLoss(args.l1 if uses_l1(args) and not finetune else 0.0, args.label_smoothing)
        t0 = time.perf_counter()
        dist.set_epoch(loaders["train_sampler"], epoch)
        stats = train_one_epoch(model, loaders["train"], criterion, optimizer, device, epoch, args, finetune=finetune,
                                amp=amp, phase_epoch=epoch - args.epochs if finetune else epoch)
        bare = dist.unwrap(model)
        pruned = any(s.original is not None for s in bare.stages())
        record = {"epoch": epoch, "phase": "finetune" if finetune else "train",
                  **{k: v for k, v in stats.items() if k != "lr"}, "lr": stats.get("lr"),
                  # before pruning: the sparsity pruning now would reach; afterwards (and for the other
                  # wirings, never pruned): 1 - present / total
                  "edge_sparsity": edge_sparsity(bare, args.prune_threshold if prunes(args) and not pruned else None)}
        last = epoch == total_epochs - 1
        if last or (args.eval_every and (epoch + 1) % args.eval_every == 0) or epoch == args.epochs - 1:
            with rng_isolated(device):
                metrics = evaluate(model, loaders["val"], device, eval_amp)
            record.update(val_top1=metrics["top1"], val_top5=metrics["top5"], val_images=metrics["images"],
                          val_skipped=metrics["skipped"])
            best = max(best, metrics["top1"])
        record["seconds"] = time.perf_counter() - t0
        writer.write(record)
        logger.info("epoch %d (%s): loss %.4f l1 %.4g sparsity %.3f%s", epoch, record["phase"], stats["loss"],
                    stats["l1"], record["edge_sparsity"],
                    f" top-1 {metrics['top1']:.2f}" if "val_top1" in record else "")
        graph = graph_record(bare, args.input_size)  # what eval.py rebuilds the network from
        state = ckpt_lib.training_state(model, optimizer, epoch=epoch, args=args, best_top1=best, pruned=pruned,
                                        graph=graph, classes=classes)
        ckpt_lib.save_checkpoint(state, run_dir / "checkpoint_last.pt")
        dist.barrier()
        if epoch == args.die_after_epoch:
            os.kill(os.getpid(), signal.SIGKILL)

    bare = dist.unwrap(model)
    if metrics is None:  # resumed after the last epoch
        with rng_isolated(device):
            metrics = evaluate(model, loaders["val"], device, eval_amp)
    final = describe(bare, args)
    if dist.is_main():
        record = graph_record(bare, args.input_size)
        (run_dir / "graph.json").write_text(json.dumps(record, indent=1))
        plot_graph(record, run_dir)
        results = {"config": config.config_name(args), "model": args.model, "wiring": args.wiring,
                   "top1": metrics["top1"], "top5": metrics["top5"], "val_images": metrics["images"], **final,
                   "dense_madds": dense["madds"], "epochs": args.epochs, "finetune_epochs": args.finetune_epochs,
                   "l1": args.l1 if uses_l1(args) else 0.0, "prune_threshold": args.prune_threshold if prunes(args) else None,
                   "seed": args.seed, "run_dir": str(run_dir)}
        (run_dir / "results.json").write_text(json.dumps(results, indent=2))
        print(f"{args.model} / {args.wiring}: top-1 {metrics['top1']:.2f} top-5 {metrics['top5']:.2f} | "
              f"{final['madds'] / 1e6:.2f} M MAdds ({dense['madds'] / 1e6:.2f} M dense), {final['params'] / 1e6:.3f} M params | "
              f"edges {final['edges_kept']}/{final['edges_total']} kept (sparsity {final['edge_sparsity']:.3f})")
        print(f"results: {run_dir / 'results.json'}")
    dist.cleanup()
    return run_dir, metrics


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
