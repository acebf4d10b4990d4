"""Evaluate AENet checkpoints on a protocol's test list with the official metrics.

    python eval.py [--config configs/toy.yaml] [--checkpoint runs/.../checkpoint_last.pt] [--amp]
                   [--data-root D] [--protocol intra_test | protocol1 | protocol2/<folder>] [--out-dir DIR]

Without --checkpoint, every variant of the config is evaluated: the ``checkpoint_last.pt`` of the
newest ``runs/celeba_spoof/<config>-<variant>/`` run (no --config and no --data-root: the toy
config). Scoring runs in fp32 unless --amp. The released model (``ckpt_iter.pth.tar``, a
``state_dict`` with ``module.`` prefixes) is recognised and evaluated as AENet_C,S,G at 224 px
without normalisation, as its own inference code does; tensors it lacks, has in excess or holds
in another shape are named in the log and the rest is loaded (``--strict-load`` refuses it
instead). The threshold is chosen on the validation
subjects held out of the protocol's train list (with the checkpoint's --val-fraction and
--val-seed) and, separately, on the test scores; both are reported. Results go to
``<run>/eval_<checkpoint>_<protocol>/``: results.json, roc.png, scores.png.
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from celeba_spoof import build, report
from celeba_spoof.data import labels_array
from celeba_spoof.engine import score
from celeba_spoof.loss import PAPER_NAMES
from celeba_spoof.model import AENet, load_released
from shared import checkpoint as ckpt_lib
from shared import config, dist, run
from shared.device import resolve_device, use_amp
from shared.log import setup_logging

log = logging.getLogger("celeba_spoof")


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("AENet evaluation", add_help=add_help)
    config.add_runtime_args(p, toy_config=build.TOY_CONFIG, train=False)
    build.add_data_args(p)
    build.add_model_args(p)
    build.add_loss_args(p)
    build.add_optim_args(p)  # accepted so that training configs load; --batch-size and --fprs are used
    p.add_argument("--checkpoint", default="", help="a checkpoint (ours or the released ckpt_iter.pth.tar); "
                   "default: checkpoint_last.pt of the newest run of each variant of this config")
    p.add_argument("--out-dir", default="", help="where results go; default: <run>/eval_<checkpoint>_<protocol>/")
    add_strict_load_arg(p)
    return p


def add_strict_load_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strict-load", action="store_true", help="refuse a released checkpoint whose tensors do not all "
                   "match the model (default: load what matches, name the rest in the log)")


def find_checkpoints(args) -> list[tuple[str | None, Path]]:
    """(variant or None, checkpoint): --checkpoint, else the newest run of each variant."""
    if args.checkpoint:
        return [(None, run.find_checkpoint(args, build.PAPER))]
    return [(v, run.find_checkpoint(args, build.PAPER, name=v)) for v in args.variants]


def load_model(path: Path, args) -> tuple[AENet, str, dict]:
    """(model, variant, checkpoint args). Our checkpoints carry their arguments; the released one
    is AENet_C,S,G at 224 px without normalisation, loaded by name (``args.strict_load``)."""
    ckpt = ckpt_lib.load_checkpoint(path)
    if "model" in ckpt:
        cargs = ckpt.get("args", {})
        for k in build.MODEL_KEYS:  # the architecture and input are the checkpoint's
            if k in cargs:
                setattr(args, k, cargs[k])
        variant = ckpt.get("variant", args.variants[0])
        model = build.build_model(argparse.Namespace(**{**vars(args), "pretrained": ""}), variant)
        model.load_state_dict(ckpt["model"])
        return model, variant, cargs
    if "state_dict" in ckpt or any(k.startswith("module.") for k in ckpt):
        args.input_size, args.normalize, args.geo_size, args.width, args.env_head = 224, "none", 14, 64, False
        model = AENet()
        report = load_released(model, ckpt, strict=getattr(args, "strict_load", False), source=str(path))
        if not report["loaded"]:
            raise ckpt_lib.CheckpointError(f"{path}: no tensor of it matches AENet_C,S,G (not the released checkpoint?)")
        log.info("%s: the released AENet_C,S,G checkpoint, %d of %d tensors loaded", path, len(report["loaded"]),
                 len(model.state_dict()))
        for kind in ("missing", "unexpected", "mismatched"):
            if report[kind]:
                log.warning("%s: %d %s tensor(s) (%s): %s", path, len(report[kind]), kind,
                            {"missing": "kept at their initialisation", "unexpected": "ignored",
                             "mismatched": "file shape, model shape; kept at their initialisation"}[kind],
                            report[kind])
        return model, "CSG", {}
    raise ckpt_lib.CheckpointError(f"{path}: neither our checkpoint ('model') nor the released one ('state_dict')")


def evaluate_checkpoint(path: Path, args, device, out_dir: Path | None = None) -> dict | None:
    """Score the validation and test lists with one checkpoint -> metrics, plots, results.json
    (rank 0; None elsewhere). ``args`` is modified (the checkpoint's model arguments)."""
    model, variant, cargs = load_model(path, args)
    model = model.to(device)
    for k in ("val_fraction", "val_seed"):  # the same held-out validation subjects as in training
        if k in cargs:
            setattr(args, k, cargs[k])
    data = build.build_data(args)
    scores = {}
    for split in ("val", "test"):
        if data.get(split):
            ds = build.dataset(args, data[split], train=False)
            loader = DataLoader(ds, batch_size=dist.per_process_batch(args.batch_size),
                                sampler=dist.build_sampler(ds, shuffle=False),
                                num_workers=args.workers)
            scores[split] = score(model, loader, device, amp=use_amp(args, device))
    if not dist.is_main():
        return None
    res = report.evaluate_scores(scores["test"], labels_array(data["test"]), scores.get("val"),
                                 labels_array(data["val"]) if data.get("val") else None, args.fprs)
    tag = args.protocol.replace("/", "_").replace(".", "_")
    out_dir = out_dir or path.parent / f"eval_{path.stem}_{tag}"
    thr = {k.split("@")[1]: res[k]["threshold"] for k in ("test@val", "test@test") if k in res}
    report.plot(scores["test"], labels_array(data["test"]), out_dir, f"{PAPER_NAMES[variant]} ({args.protocol} test)", thr)
    results = {"config": config.config_name(args), "variant": variant, "variant_name": PAPER_NAMES[variant],
               "checkpoint": str(path), "protocol": args.protocol, "headline": report.headline(res), "metrics": res,
               "data_report": {k: v.to_dict() for k, v in data["reports"].items()}}
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    results["out_dir"] = str(out_dir)
    return results


def main(args):
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    setup_logging()
    main_rank = dist.is_main()
    jobs = find_checkpoints(args)
    out = {}
    try:
        for v, path in jobs:
            a = copy.copy(args)
            if v is not None:
                a.variants = [v]
            target = None
            if args.out_dir:
                target = Path(args.out_dir) / v if len(jobs) > 1 else Path(args.out_dir)
            out[v or "checkpoint"] = evaluate_checkpoint(path, a, device, target)
    finally:
        dist.cleanup()
    if main_rank:
        print(report.format_table([(r["variant_name"], r["metrics"]) for r in out.values()]))
        for r in out.values():
            print(f"{r['variant']}: {r['out_dir']}/results.json")
    return out


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
