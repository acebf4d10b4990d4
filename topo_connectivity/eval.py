"""Evaluate a trained TopoNet: top-1 / top-5 on the validation split, MAdds, parameters, edges.

    cd topo_connectivity && python eval.py                       # newest toy run's checkpoint_last.pt
    python eval.py --checkpoint ../runs/topo_connectivity/resnet50_learned/<ts>/checkpoint_last.pt \\
        --data-root /datasets/imagenet [--amp]
    torchrun --nproc_per_node 8 eval.py --checkpoint ... --data-root ...

The network is rebuilt from the graph stored in the checkpoint (family, wiring, kept edges), so a
pruned network needs nothing else. Only `val/` is scanned; its class folders must be the
checkpoint's classes. fp32 unless `--amp`. Writes `eval_results.json` beside the checkpoint.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from shared import checkpoint as ckpt_lib
from shared import config, dist, log, run
from shared.device import resolve_device, use_amp
from shared.metrics.flops import count_madds, count_params
from topo_connectivity.build import build_from_graph
from topo_connectivity.data import build_loaders, scan_split
from topo_connectivity.engine import evaluate
from topo_connectivity.pruning import count_edges
from topo_connectivity.train import HERE, PAPER, add_data_args, add_model_args, add_schedule_args, data_root

logger = logging.getLogger(PAPER)


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("TopoNet evaluation", add_help=add_help, description=__doc__.split("\n")[0])
    config.add_runtime_args(p, toy_config=HERE / "configs" / "toy.yaml", train=False)
    add_data_args(p)
    p.add_argument("--checkpoint", default="", help="a train.py checkpoint (default: the newest run of --config)")
    # accepted so that the training configs load here; the checkpoint's graph defines the network
    add_model_args(p)
    add_schedule_args(p)
    return p


def main(args):
    device = resolve_device(args.device)
    dist.init_distributed(device, args.dist_timeout)
    ckpt_path = run.find_checkpoint(args, PAPER)
    log.setup_logging()
    state = ckpt_lib.load_checkpoint(ckpt_path)
    for key in ("graph", "model", "classes"):
        if key not in state:
            raise ckpt_lib.CheckpointError(f"{ckpt_path}: no {key!r} entry (not a topo_connectivity train.py checkpoint)")
    root = data_root(args)
    scanned = {"val": scan_split(root / "val", list(state["classes"]))}
    loaders = build_loaders(args, root, scanned, device)
    model = build_from_graph(state["graph"])
    model.load_state_dict(state["model"])
    model = model.to(device)
    metrics = evaluate(model, loaders["val"], device, use_amp(args, device, evaluation=True))
    total, kept = count_edges(model)
    out = {"checkpoint": str(ckpt_path), "top1": metrics["top1"], "top5": metrics["top5"],
           "val_images": metrics["images"], "skipped_images": metrics["skipped"],
           "madds": count_madds(model, (1, 3, args.input_size, args.input_size)), "params": count_params(model),
           "wiring": state["graph"].get("wiring"), "edges_total": total, "edges_kept": kept,
           "edge_sparsity": 1.0 - kept / max(total, 1), "amp": use_amp(args, device, evaluation=True)}
    if dist.is_main():
        Path(ckpt_path).with_name("eval_results.json").write_text(json.dumps(out, indent=2))
        print(f"top-1 {out['top1']:.2f} top-5 {out['top5']:.2f} on {out['val_images']} images | "
              f"{out['madds'] / 1e6:.2f} M MAdds | edges {kept}/{total}")
    dist.cleanup()
    return out


if __name__ == "__main__":
    main(config.parse_args(get_args_parser()))
