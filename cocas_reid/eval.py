"""Evaluate BC-Net checkpoints: features -> Euclidean or XQDA distances (re-ranked on request) ->
CMC, mAP and mINP exactly as torchreid scores them (`engine.rank_metrics`).

    cd cocas_reid && python eval.py [--config configs/toy.yaml] [--distance euclidean|xqda] [--rerank]
                   [--same-camera-rule market|none] [--checkpoint CKPT] [--data-root D] [--amp]
    torchrun --nproc_per_node 4 eval.py --config configs/cocas_bcnet.yaml --data-root D --distance xqda --rerank

Without --checkpoint, every entry of the config's --branches is evaluated: `checkpoint_last.pt` of
the newest `runs/cocas_reid/<config>-<bcnet|bf|cf>/` run. The model's architecture and input sizes
come from the checkpoint; the data, the gallery clothes boxes and the protocol from the flags.
Features are extracted in fp32 (bf16 with --amp on CUDA), sharded over the ranks. Results go to
`<run>/eval-<distance>[-rerank]-<rule>/` (or --out-dir): results.json (percent: mAP, rank1,
rank5, rank10, rank20, mINP, num_valid_query, distance, rerank, same_camera_rule) and
features.npz (qf, gf, q_pids, g_pids, q_camids, g_camids).
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
from pathlib import Path

import numpy as np

from cocas_reid import build
from cocas_reid.engine import evaluate
from cocas_reid.train import eval_loaders
from shared import checkpoint as ckpt_lib
from shared import config, dist, run
from shared.device import resolve_device, use_amp
from shared.log import setup_logging

logger = logging.getLogger("cocas_reid")
# what a checkpoint fixes about the model and its inputs
MODEL_KEYS = ("backbone", "clothes_backbone", "last_stride", "mask", "mask_hidden", "mask_maps", "feat_dim",
              "fb_loss", "height", "width", "template_size")


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("BC-Net evaluation", add_help=add_help)
    config.add_runtime_args(p, toy_config=build.TOY_CONFIG, train=False)
    build.add_data_args(p)
    build.add_model_args(p)
    build.add_eval_args(p)
    # accepted so that training configs load; unused here
    build.add_loss_args(p)
    build.add_optim_args(p)
    build.add_detector_args(p)
    p.add_argument("--checkpoint", default="", help="a checkpoint to evaluate (default: the newest run of each "
                   "--branches entry of this config)")
    p.add_argument("--out-dir", default="", help="where results go (default <run>/eval-<distance>[-rerank]-<rule>/)")
    return p


def find_checkpoints(args) -> list[tuple[str | None, Path]]:
    if args.checkpoint:
        return [(None, run.find_checkpoint(args, build.PAPER))]
    return [(b, run.find_checkpoint(args, build.PAPER, name=build.RUN_NAMES[b])) for b in args.branches]


def load_model(path: Path, args):
    """(model, branch): the architecture from the checkpoint's arguments, random-init backbones
    (nothing is downloaded), then the checkpoint's weights."""
    ckpt = ckpt_lib.load_checkpoint(path)
    if "model" not in ckpt:
        raise ckpt_lib.CheckpointError(f"{path}: no 'model' entry (not a cocas_reid training checkpoint)")
    cargs = ckpt.get("args", {})
    for k in MODEL_KEYS:
        if k in cargs:
            setattr(args, k, cargs[k])
    branch = ckpt.get("branch") or (cargs.get("branches") or args.branches)[0]
    state = ckpt["model"]
    num_classes = state["classifier.weight"].shape[0] if "classifier.weight" in state else 0
    model = build.build_model(argparse.Namespace(**{**vars(args), "weights": ""}), branch, num_classes)
    model.load_state_dict(state)
    return model, branch


def main(args):
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    setup_logging()
    main_rank = dist.is_main()
    out = {}
    try:
        jobs = find_checkpoints(args)
        data = build.build_data(args, splits=("train", "query", "gallery"))
        for branch, path in jobs:
            a = copy.copy(args)
            model, branch = load_model(path, a)
            a.branches = [branch]
            boxes = build.gallery_boxes(a, data) if build.uses_clothes(a) else None
            res = evaluate(model.to(device), eval_loaders(a, data, boxes), data, a, device,
                           use_amp(a, device, evaluation=True))
            if res is None:
                continue
            metrics, feats = res
            tag = f"eval-{a.distance}{'-rerank' if a.rerank else ''}-{a.same_camera_rule}"
            target = Path(args.out_dir) / build.RUN_NAMES[branch] if args.out_dir else path.parent / tag
            target.mkdir(parents=True, exist_ok=True)
            np.savez(target / "features.npz", **feats)
            result = {"checkpoint": str(path), "branch": branch, "dataset": a.dataset, "variant": a.variant,
                      "clothes_source": a.clothes_source if branch != "bf" else None, **metrics}
            (target / "results.json").write_text(json.dumps(result, indent=2))
            out[branch] = result
            logger.info("%s: mAP %.2f rank-1 %.2f rank-5 %.2f mINP %.2f -> %s", path, metrics["mAP"], metrics["rank1"],
                        metrics["rank5"], metrics["mINP"], target / "results.json")
    finally:
        dist.cleanup()
    if main_rank:
        for branch, r in out.items():
            print(f"{branch}: mAP {r['mAP']:.2f}  rank-1 {r['rank1']:.2f}  rank-5 {r['rank5']:.2f}  "
                  f"rank-10 {r['rank10']:.2f}  mINP {r['mINP']:.2f}  ({r['distance']}{', re-ranked' if r['rerank'] else ''}, "
                  f"same-camera rule {r['same_camera_rule']})")
    return out


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
