"""DMCP: search the channel widths of a torchvision network for a FLOPs budget, derive the pruned
architecture and export it (and, with --then-retrain, retrain and evaluate it).

    cd dmcp && python prune.py                       # the whole toy pipeline (configs/toy.yaml: the toy default)
    python prune.py --config configs/resnet50_2.2g.yaml --data-root /datasets/imagenet [--flops 2200]
    torchrun --nproc_per_node 8 prune.py --config configs/mbv2_300m.yaml --data-root /datasets/imagenet

Reading order: distributed init and run folder, data, supernet (gates, analytic FLOPs), the two
optimizers (weights; alphas) and their schedules, resume, the epoch loop (stage 1: sandwich weight
steps only; stage 2: a weight step and an architecture step per iteration; BN re-calibration and
validation; atomic checkpoint), derivation (expected sampling repaired into [0.95 T, T], direct
samples beside), export (arch.json, pruned.pt, pruned.pt2), optional retraining (a sub-run
`runs/dmcp/<config>-retrain/<timestamp>/`, as train.py writes it), results.json.
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import time
from pathlib import Path

import torch
import torch.distributed as tdist

from dmcp import build
from dmcp.data import build_datasets, build_loaders, skipped_images
from dmcp.derive import BudgetError, arch_record, derive, direct_sampling, export_pruned
from dmcp.engine import SearchState, calibrate_bn, evaluate, param_groups, search_one_epoch, warmup_cosine
from dmcp.export import save_program
from shared import checkpoint as ckpt_lib
from shared import config, dist, log, run
from shared.device import resolve_device, use_amp
from shared.metrics.flops import count_madds, count_params
from shared.rng import rng_isolated

logger = logging.getLogger("dmcp")


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("DMCP pruning (search + derivation)", add_help=add_help)
    return build.add_all_args(p)


def _broadcast_parameters(net) -> None:
    """Rank 0's initial weights and alphas on every rank (the gradients are averaged by hand)."""
    if dist.is_dist():
        for t in net.state_dict().values():
            tdist.broadcast(t, src=0)


def _gate_summary(net) -> dict:
    return {g.name: round(float(g.expected_channels().detach()), 2) for g in net.gates}


def search_schedules(args, steps_per_epoch: int, arch_start: int):
    """(weight lr, alpha lr) as functions of the step: the official warm-up + cosine for the
    weights; alpha constant through stage 1 and cosine over stage 2. Both are multiplied by
    `build.lr_scale` (global batch / 2048 with --scale-lr)."""
    total = args.epochs * steps_per_epoch
    warm = int(round(args.warmup_epochs * steps_per_epoch))
    scale = build.lr_scale(args)

    def lr_fn(step):
        return scale * warmup_cosine(step, total, args.lr, args.warmup_lr, warm, args.min_lr)

    def arch_lr_fn(step):
        return scale * warmup_cosine(step, total, args.arch_lr, args.arch_lr, arch_start, args.arch_min_lr)

    return lr_fn, arch_lr_fn


def validate(net, loaders, device, args, amp: bool, stage: int) -> dict:
    """Max width after BN re-calibration; in stage 2 with the gates on (the network the
    architecture step trains; the official code validates it that way)."""
    with rng_isolated(device):
        net.set_max()
        net.set_scaling(stage == 2)
        try:
            calibrate_bn(net, loaders["train"], args.calib_batches, device, amp)
            return evaluate(net, loaders["val"], device, amp, header="validate")
        finally:
            net.set_scaling(False)


def search(args, net, loaders, device, run_dir: Path, resume_from: Path | None, amp: bool) -> dict:
    """Stage 1 + stage 2 of the search; returns the last validation metrics."""
    opt_w = torch.optim.SGD(param_groups(net.net, args.weight_decay), lr=args.lr, momentum=args.momentum,
                            nesterov=args.nesterov)
    opt_a = torch.optim.SGD(net.arch_parameters(), lr=args.arch_lr, momentum=args.momentum,
                            nesterov=args.nesterov, weight_decay=0.0)
    spe = len(loaders["train"])
    total = args.epochs * spe
    state = SearchState(total, int(total * args.stage1_fraction), args.seed)
    lr_fn, arch_lr_fn = search_schedules(args, spe, state.arch_start)
    eval_amp = use_amp(args, device, evaluation=True)

    start_epoch, val = 0, {}
    if resume_from is not None:
        ck = ckpt_lib.resume(resume_from, net, map_location=device)
        opt_w.load_state_dict(ck["optimizer"])
        opt_a.load_state_dict(ck["arch_optimizer"])
        state.load_state_dict(ck["search"])
        start_epoch, val = ck["epoch"] + 1, ck.get("val", {})
        logger.info("resumed the search from %s at epoch %d (step %d)", resume_from, start_epoch, state.step)
    logger.info("search: %d epochs x %d steps, architecture from step %d, learning rates x %.4g", args.epochs,
                spe, state.arch_start, build.lr_scale(args))
    writer = log.JsonlWriter(run_dir / "metrics.jsonl")
    for epoch in range(start_epoch, args.epochs):
        t0 = time.perf_counter()
        dist.set_epoch(loaders["train_sampler"], epoch)
        stats = search_one_epoch(net, loaders["train"], opt_w, opt_a, state, args, device, epoch, lr_fn,
                                 arch_lr_fn, amp)
        emadds = float(net.expected_flops().detach())
        record = {"epoch": epoch, "step": state.step, **{f"train_{k}": v for k, v in stats.items()},
                  "expected_madds": emadds, "random_prob": state.random_prob}
        last = epoch == args.epochs - 1
        if last or (args.val_every and (epoch + 1) % args.val_every == 0):
            val = validate(net, loaders, device, args, eval_amp, state.last_stage)
            record.update({f"val_{k}": v for k, v in val.items()})
        record["skipped_images"] = int(sum(dist.all_gather_object(skipped_images(loaders))))
        record["seconds"] = time.perf_counter() - t0
        record["expected_channels"] = _gate_summary(net)
        writer.write(record)
        logger.info("search epoch %d (stage %d): loss max %.3f min %.3f | E[FLOPs] %.2fM (target %.2fM)%s (%.0fs)",
                    epoch, state.last_stage, stats.get("loss_max", float("nan")), stats.get("loss_min", float("nan")),
                    emadds / 1e6, args.flops, f" | val top-1 {val['top1']:.2f}" if "val_top1" in record else "",
                    record["seconds"])
        ck = ckpt_lib.training_state(net, opt_w, epoch=epoch, step=state.step, args=args, val=val,
                                     arch_optimizer=opt_a.state_dict(), search=state.state_dict())
        ckpt_lib.save_checkpoint(ck, run_dir / "checkpoint_last.pt")
        dist.barrier()
    return val


def export(args, net, run_dir: Path) -> tuple[dict, dict]:
    """Derive (ES or DS), count the exported network, write arch.json / pruned.pt / pruned.pt2 and
    the DS samples. Returns (arch record, summary). Rank 0 writes; every rank returns the arch."""
    target = build.target_madds(args)
    rec = derive(net, target, args.derive, args.budget_band, generator=torch.Generator().manual_seed(args.seed + 1))
    states = [rec["gates"][g.name]["state"] for g in net.gates]
    plain = export_pruned(net, states).eval()
    counted = count_madds(plain, (1, 3, args.input_size, args.input_size))
    lo = args.budget_band * target
    if counted != rec["madds"] or not lo <= counted <= target:
        raise RuntimeError(f"exported network: {counted:,} counted MAdds, analytic {rec['madds']:,}, "
                           f"band [{lo:,.0f}, {target:,.0f}]")
    rec["counted_madds"] = counted
    rec["counted_params"] = count_params(plain)
    summary = {"params": rec["counted_params"], "derive_ms": rec["derivation"]["derive_ms"]}
    if dist.is_main():
        (run_dir / "arch.json").write_text(json.dumps(rec, indent=1))
        ckpt_lib.save_checkpoint({"model": plain.state_dict(), "arch": rec}, run_dir / "pruned.pt")
        t0 = time.perf_counter()
        ds, info = [], {}
        if args.ds_samples:
            try:
                ds, info = direct_sampling(net, target, args.budget_band, n=args.ds_samples,
                                           generator=torch.Generator().manual_seed(args.seed + 2))
            except BudgetError as e:  # the extra samples are optional; arch.json is already written
                logger.warning("no direct-sampling architectures written: %s", e)
        for i, s in enumerate(ds):
            r = arch_record(net, s, target, "ds", {"derivation": info})
            (run_dir / f"arch_ds_{i}.json").write_text(json.dumps(r, indent=1))
        summary["ds_ms"] = (time.perf_counter() - t0) * 1e3
        summary["ds_madds"] = [int(net.madds(net.channels_of(s))) for s in ds]
        if args.export_program:
            try:
                save_program(plain, run_dir / "pruned.pt2", args.input_size)
            except Exception as e:  # torch.export is optional: the state dict + arch.json suffice
                logger.warning("torch.export of the pruned network failed (%s): pruned.pt2 not written", e)
    return rec, summary


def retrain_run(args, arch: dict, resumed: bool) -> tuple[Path, Path | None]:
    """The sub-run `<config>-retrain` of --then-retrain. A resumed prune run continues the newest
    retraining of this config if it trains the same architecture; anything else starts a fresh one."""
    sub = copy.copy(args)
    sub.resume = "auto" if resumed else ""
    run_dir, ckpt = run.resolve_run_dir(sub, "dmcp", name="retrain")
    if ckpt is not None and ckpt_lib.load_checkpoint(ckpt).get("arch", {}).get("layers") != arch["layers"]:
        sub.resume = ""  # the newest retraining is of another architecture
        run_dir, ckpt = run.resolve_run_dir(sub, "dmcp", name="retrain")
    return run_dir, ckpt


def main(args):
    build.check_args(args)
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    run_dir, resume_from = run.resolve_run_dir(args, "dmcp")
    log.setup_logging(run_dir)
    config.save_config(args, run_dir / "config.yaml")
    log.run_info(args, run_dir)
    amp = use_amp(args, device)

    data = build_datasets(args)
    loaders = build_loaders(args, data, device)
    torch.manual_seed(args.seed)
    net = build.supernet_from_args(args, len(data["classes"])).to(device)
    _broadcast_parameters(net)
    dist.seed_everything(args.seed)
    full, smallest = int(net.madds(net.full_channels())), int(net.madds(net.channels_of([0] * len(net.gates))))
    target = build.target_madds(args)
    logger.info("supernet %s: %d gates, %d alphas, %.2f MFLOPs at full width, %.2f at the narrowest, target %.2f",
                args.model, len(net.gates), net.num_alphas(), full / 1e6, smallest / 1e6, args.flops)
    if not smallest <= target <= full:
        raise ValueError(f"--flops {args.flops}: outside what this supernet can reach "
                         f"[{smallest / 1e6:.2f}, {full / 1e6:.2f}] MFLOPs")

    t0 = time.perf_counter()
    val = search(args, net, loaders, device, run_dir, resume_from, amp)
    search_s = time.perf_counter() - t0
    arch, summary = export(args, net, run_dir)
    results = {"config": config.config_name(args), "kind": "prune", "model": args.model,
               "target_madds": target, "madds": arch["counted_madds"], "params": summary["params"],
               "full_madds": full, "method": args.derive, "derive_ms": summary["derive_ms"],
               "search_seconds": search_s, "search_val": val, "run_dir": str(run_dir)}
    if args.then_retrain:
        from dmcp.train import retrain

        sub_dir, sub_resume = retrain_run(args, arch, resumed=resume_from is not None)
        if dist.is_main():
            (sub_dir / "arch.json").write_text(json.dumps(arch, indent=1))
        t1 = time.perf_counter()
        metrics = retrain(args, arch, sub_dir, device, data=data, resume_from=sub_resume,
                          arch_path=run_dir / "arch.json")
        results.update(top1=metrics["top1"], top5=metrics["top5"], retrain_epochs=args.retrain_epochs,
                       retrain_seconds=time.perf_counter() - t1, retrain_run_dir=str(sub_dir))
    if dist.is_main():
        (run_dir / "results.json").write_text(json.dumps(results, indent=2))
        print(f"target {args.flops:.2f} MFLOPs -> achieved {arch['counted_madds'] / 1e6:.2f} MFLOPs (counted MAdds "
              f"{arch['counted_madds']:,}, band [{args.budget_band * args.flops:.2f}, {args.flops:.2f}]), "
              f"{summary['params'] / 1e6:.3f}M params ({args.derive.upper()} in {summary['derive_ms']:.1f} ms); "
              f"full network {full / 1e6:.2f} MFLOPs")
        if "top1" in results:
            print(f"retrained pruned {args.model} ({args.retrain_epochs} epochs): top-1 {results['top1']:.2f} "
                  f"top-5 {results['top5']:.2f}")
        print(f"arch: {run_dir / 'arch.json'}\nresults: {run_dir / 'results.json'}")
    dist.cleanup()
    return run_dir, results


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
