"""ST-NAS: train the supernet of the topology-augmented space (phase 1: SPOS uniform-path SGD),
draw parameter samples with SGLD (phase 2), and search it by evolution under a MAdds limit with
the averaged proxy (phase 3); with --then-retrain, retrain the winner from scratch and evaluate it.

    cd st_nas && python search.py                      # every phase on the toy data (configs/toy.yaml)
    python search.py --config configs/st_nas_a.yaml --data-root /datasets/imagenet
    torchrun --nproc_per_node 8 search.py --config configs/st_nas_b.yaml --data-root /datasets/imagenet \
        --snapshots-from ../runs/st_nas/st_nas_a/<stamp>     # reuse A's supernet samples for B

Writes into the run folder: metrics.jsonl, checkpoint_last.pt / checkpoint_supernet.pt,
snapshots/theta_XX.pt (the M samples), search_state.pt (the evolution, per generation),
population.jsonl (every evaluated candidate), classes.json, arch.json (the winner) and results.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import torch

from shared import checkpoint as ckpt_lib
from shared import config, dist, log, run
from shared.device import resolve_device, use_amp
from shared.metrics.flops import count_madds, count_params
from shared.rng import rng_isolated
from st_nas.data import load_splits
from st_nas.evolution import Evolution
from st_nas.model import Supernet, build_child
from st_nas.options import add_all_args, check_args
from st_nas.phases import SearchData, snapshot_paths, train_supernet
from st_nas.proxy import ProxyEvaluator, chain_temperature, select_snapshots
from st_nas.space import Skeleton, arch_from_json, count_space

logger = logging.getLogger("st_nas")
PAPER = "st_nas"


def get_args_parser(add_help=True):
    return add_all_args(argparse.ArgumentParser("ST-NAS search", add_help=add_help))


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def reused_snapshots(args, skeleton: Skeleton) -> list[Path]:
    """The sample files of `--snapshots-from RUN_DIR`, checked against this skeleton."""
    src = Path(args.snapshots_from)
    ck = src / "checkpoint_last.pt"
    if not ck.is_file():
        raise FileNotFoundError(f"--snapshots-from {src}: no checkpoint_last.pt (not a search run folder)")
    saved = ckpt_lib.load_checkpoint(ck)
    arg = saved.get("args", {})
    theirs = Skeleton(input_size=arg["input_size"], num_classes=skeleton.num_classes, stem_width=arg["stem_width"],
                      stem_stride=arg["stem_stride"], first_width=arg["first_width"], widths=arg["widths"],
                      strides=arg["strides"], nodes=arg["nodes"], ops=arg["ops"], last_width=arg["last_width"])
    if theirs != skeleton:
        raise ValueError(f"--snapshots-from {src}: its supernet skeleton {theirs} differs from this run's {skeleton}")
    paths = snapshot_paths(src, arg["snapshots"])
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"--snapshots-from {src}: phase 2 did not finish there (missing {missing[:2]})")
    return paths


def search(args, model, evaluator: ProxyEvaluator, evo: Evolution, run_dir: Path, writer) -> dict:
    """Phase 3: the generations not done yet; every generation is checkpointed."""
    state_path = run_dir / "search_state.pt"
    if state_path.is_file():
        evo.load_state_dict(ckpt_lib.load_checkpoint(state_path)["evolution"])
        logger.info("resumed the evolution at generation %d (%d evaluated)", evo.generation, len(evo.records))

    def score(archs):
        accs = evaluator.accuracies(archs)
        return [(sum(a) / len(a), a) for a in accs]

    while evo.generation <= args.generations:
        t0 = time.perf_counter()
        with rng_isolated(next(model.parameters()).device):
            new = evo.run_generation(score)
        best = evo.top(1)[0]
        if dist.is_main():
            ckpt_lib.save_checkpoint({"evolution": evo.state_dict(), "proxy": args.proxy}, state_path)
            tmp = run_dir / ".population.jsonl.tmp"
            tmp.write_text("".join(json.dumps({k: r[k] for k in ("generation", "arch", "madds", "proxy",
                                                                  "snapshot_top1")}) + "\n" for r in evo.records))
            os.replace(tmp, run_dir / "population.jsonl")
        dist.barrier()
        rec = {"phase": 3, "generation": evo.generation - 1, "evaluated": len(new), "best_proxy": best["proxy"],
               "best_madds": best["madds"], "generation_best": max((r["proxy"] for r in new), default=None),
               "seconds": time.perf_counter() - t0}
        writer.write(rec)
        logger.info("generation %d: %d new candidates, best proxy %.2f at %.2fM MAdds (%.0f s)", rec["generation"],
                    len(new), best["proxy"], best["madds"] / 1e6, rec["seconds"])
    return evo.top(1)[0]


def export(args, model, best: dict, skeleton: Skeleton, run_dir: Path, space_size: dict,
           search_val_images: int) -> dict:
    """arch.json: the winner, its counted MAdds (must equal the analytic figure) and parameters."""
    arch = arch_from_json(best["arch"], skeleton)
    child = build_child(model, arch).cpu()
    counted = count_madds(child, (1, 3, skeleton.input_size, skeleton.input_size))
    if counted != best["madds"]:
        raise RuntimeError(f"counted MAdds {counted:,} != analytic {best['madds']:,} for {best['arch']}")
    record = {"stages": best["arch"], "skeleton": skeleton.to_dict(), "input_size": skeleton.input_size,
              "num_classes": skeleton.num_classes, "madds": counted, "madds_limit": int(round(args.madds_limit * 1e6)),
              "params": count_params(child), "proxy": best["proxy"], "proxy_variant": args.proxy,
              "snapshot_top1": best["snapshot_top1"], "search_val_images": search_val_images,
              "space_size": {k: str(v) if v > 2**53 else v for k, v in space_size.items()}}
    if dist.is_main():
        _write_json(run_dir / "arch.json", record)
    return record


def main(args):
    check_args(args)
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    run_dir, resume_from = run.resolve_run_dir(args, PAPER)
    log.setup_logging(run_dir)
    config.save_config(args, run_dir / "config.yaml")
    log.run_info(args, run_dir)
    dist.seed_everything(args.seed)

    splits = load_splits(args, train=True, val=args.then_retrain)
    skeleton = Skeleton.from_args(args, len(splits["classes"]))
    evo = Evolution(skeleton, int(round(args.madds_limit * 1e6)), population=args.population, topk=args.topk,
                    mutations=args.mutations, crossovers=args.crossovers, mutate_prob=args.mutate_prob, seed=args.seed)
    space_size = count_space(skeleton)
    logger.info("space: %s topologies, %.3g architectures (the paper: over 3.4e10 topologies)",
                f"{space_size['topologies']:,}", space_size["architectures"])
    data = SearchData.build(args, splits, device)
    if dist.is_main():
        _write_json(run_dir / "classes.json", splits["classes"])
    torch.manual_seed(args.seed)  # the same initial supernet on every rank
    model = Supernet(skeleton, args.zero_init_residual).to(device)
    dist.seed_everything(args.seed)
    writer = log.JsonlWriter(run_dir / "metrics.jsonl")

    t0 = time.perf_counter()
    if args.snapshots_from:
        samples = reused_snapshots(args, skeleton)
    else:
        samples = train_supernet(args, model, data, device, run_dir, chain_temperature(args.proxy, args.temperature),
                                 resume_from, writer)
    supernet_s = time.perf_counter() - t0
    evaluator = ProxyEvaluator(model, select_snapshots(samples, args.proxy), data.calib, data.search_val, device,
                               use_amp(args, device, evaluation=True), args.print_freq)
    t1 = time.perf_counter()
    best = search(args, model, evaluator, evo, run_dir, writer)
    arch = export(args, model, best, skeleton, run_dir, space_size, data.search_val_images)
    results = {"config": config.config_name(args), "proxy_variant": args.proxy, "proxy": best["proxy"],
               "search_val_images": data.search_val_images, "search_madds": arch["madds"],
               "madds_limit": arch["madds_limit"], "params": arch["params"], "evaluated": len(evo.records),
               "supernet_seconds": supernet_s, "search_seconds": time.perf_counter() - t1, "run_dir": str(run_dir)}
    if args.then_retrain:
        from st_nas.train import retrain

        sub = run_dir / "retrain"
        last = ckpt_lib.latest_checkpoint(sub) if sub.is_dir() else None
        metrics = retrain(args, arch, sub, device, splits, resume_from=last)
        results.update(top1=metrics["top1"], top5=metrics["top5"], madds=arch["madds"],
                       val_images=metrics["images"], retrain_epochs=args.retrain_epochs)
    if dist.is_main():
        _write_json(run_dir / "results.json", results)
        print(f"searched under {args.madds_limit:g}M MAdds: {arch['madds'] / 1e6:.2f}M MAdds, "
              f"{arch['params'] / 1e6:.3f}M params, proxy ({args.proxy}) {best['proxy']:.2f} on "
              f"{data.search_val_images} held-out images; {len(evo.records)} architectures evaluated")
        if "top1" in results:
            print(f"retrained from scratch ({args.retrain_epochs} epochs): top-1 {results['top1']:.2f}, "
                  f"top-5 {results['top5']:.2f} on {results['val_images']} val images")
        print(f"arch: {run_dir / 'arch.json'}\nresults: {run_dir / 'results.json'}")
    dist.cleanup()
    return run_dir, results


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
