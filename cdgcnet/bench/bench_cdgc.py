"""Benchmark: the class-wise graph convolution against a dense reference, and CDGC against the backbone.

    python cdgcnet/bench/bench_cdgc.py            # 97 x 97 nodes (769 crop), D 256; backbone at 769 x 769
    python cdgcnet/bench/bench_cdgc.py --quick    # the same layer comparison; backbone at 385 x 385

1. One dynamic graph layer (Eq. A + Eq. G, K = 8, embedding 128, forward + backward) on the
   97 x 97 node map of a 769 crop, D = 256, the pixels assigned to the 19 classes in (approximately)
   the pixel shares of the Cityscapes training set. `classwise` searches neighbours within each
   class (`cdgcnet.graph.GraphLayer`); `dense` is the reference that builds the N x N similarity,
   masks pairs of different classes and takes the top-K per row (`dense_graph_layer`). Same
   weights and inputs: the outputs must agree to 1e-5 (fp32).
2. The whole CDGC module (2 layers) forward + backward, against the dilated ResNet-101 backbone
   forward + backward at 769 x 769 (``--quick``: 385 x 385), batch 1.

Each measurement runs in a fresh subprocess. Peak memory: CUDA's max_memory_allocated when CUDA is
used, otherwise the process's resident high-water mark (``ru_maxrss``) minus its resident size
once inputs and weights are built. Times: torch.utils.benchmark.Timer, median per forward+backward.
The last line is JSON: {max_abs_diff, memory_ratio (dense / classwise), speed_ratio (dense time /
classwise time), cdgc_vs_backbone (CDGC time / backbone time)}.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile

if not __package__:  # run as a file: make `cdgcnet` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

# approximate share of each train id among the labelled pixels of the Cityscapes training set
CITYSCAPES_SHARES = (0.369, 0.061, 0.228, 0.0066, 0.0088, 0.0123, 0.0021, 0.0055, 0.159, 0.0116, 0.040,
                     0.0121, 0.0013, 0.070, 0.0027, 0.0023, 0.0023, 0.0010, 0.0041)


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("CDGC benchmark", add_help=add_help)
    p.add_argument("--nodes", type=int, default=97, help="node map side (97 = a 769 crop at output stride 8)")
    p.add_argument("--dim", type=int, default=256, help="node feature dimension D")
    p.add_argument("--embed-dim", type=int, default=128, help="similarity embedding")
    p.add_argument("--knn", type=int, default=8, help="K")
    p.add_argument("--image", type=int, default=769, help="backbone input side (--quick: 385)")
    p.add_argument("--backbone", default="resnet101", help="resnet101 | resnet50")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--min-run-time", type=float, default=2.0, help="seconds per Timer measurement")
    p.add_argument("--quick", action="store_true", help="backbone at 385 x 385, shorter timing")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--outdir", default=None, help=argparse.SUPPRESS)
    return p


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _labels(n: int, generator):
    import torch

    shares = torch.tensor(CITYSCAPES_SHARES, dtype=torch.float64)
    counts = (shares / shares.sum() * n).floor().long()
    counts[0] += n - int(counts.sum())
    labels = torch.repeat_interleave(torch.arange(len(counts)), counts)
    return labels[torch.randperm(n, generator=generator)]


def worker(args) -> dict:
    import gc

    import torch
    from torch.utils.benchmark import Timer

    from cdgcnet.graph import GraphLayer, dense_graph_layer, group_nodes, key_subsets
    from cdgcnet.model import CDGCModule, build_backbone

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    n = args.nodes * args.nodes
    if args.worker in ("classwise", "dense"):
        layer = GraphLayer(args.dim, args.embed_dim, args.knn).to(device).train()
        x = torch.randn(n, args.dim, generator=g).to(device).requires_grad_(True)
        labels = _labels(n, g).to(device)
        groups = group_nodes(labels.view(1, -1, 1), 19)
        keys = key_subsets(groups, 0, training=True)

        def step():
            out = layer(x, groups, keys) if args.worker == "classwise" else dense_graph_layer(layer, x, labels)
            out.sum().backward()
            return out
    elif args.worker == "cdgc":
        module = CDGCModule(args.dim, 19, 2, args.knn, args.embed_dim, max_nodes=4096).to(device).train()
        x = torch.randn(1, args.dim, args.nodes, args.nodes, generator=g).to(device).requires_grad_(True)
        coarse = torch.nn.functional.one_hot(_labels(n, g), 19).float().t().reshape(1, 19, args.nodes, args.nodes)
        coarse = coarse.to(device)

        def step():
            out = module(x, coarse)
            out.sum().backward()
            return out
    else:
        net = build_backbone(args.backbone).to(device).train()
        x = torch.randn(1, 3, args.image, args.image, generator=g).to(device)

        def step():
            c3, c4 = net(x)
            (c3.sum() + c4.sum()).backward()
            return c4
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base = _rss_bytes()
    out = step()  # warm-up, and the output compared by the parent
    if args.outdir and args.worker in ("classwise", "dense"):
        # the first step's output (batch statistics, identical inputs and weights in both workers); after
        # the timed steps the BN running statistics depend on how many steps each Timer chose to run
        torch.save(out.detach().cpu(), os.path.join(args.outdir, f"{args.worker}.pt"))
    timer = Timer("step()", globals={"step": step})
    t = timer.blocked_autorange(min_run_time=args.min_run_time).median
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base)
    del out
    return {"variant": args.worker, "device": str(device), "seconds": t, "peak_bytes": int(peak)}


def run(args, variant: str, outdir: str) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", variant, "--nodes", str(args.nodes), "--dim",
           str(args.dim), "--embed-dim", str(args.embed_dim), "--knn", str(args.knn), "--image", str(args.image),
           "--backbone", args.backbone, "--device", args.device, "--min-run-time", str(args.min_run_time),
           "--outdir", outdir]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1][7:])


def main(args):
    if args.worker:
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return None
    import torch

    if args.quick:
        args.image, args.min_run_time = min(args.image, 385), min(args.min_run_time, 0.5)
    with tempfile.TemporaryDirectory() as tmp:
        r = {v: run(args, v, tmp) for v in ("classwise", "dense", "cdgc", "backbone")}
        diff = float((torch.load(os.path.join(tmp, "classwise.pt"), weights_only=True)
                      - torch.load(os.path.join(tmp, "dense.pt"), weights_only=True))
                     .abs().max())
    mib = 2 ** 20
    print(f"graph layer, {args.nodes}x{args.nodes} nodes, D {args.dim}, K {args.knn}, Cityscapes class shares "
          f"({r['classwise']['device']}, forward + backward):")
    for v in ("classwise", "dense"):
        print(f"  {v:<10} {r[v]['seconds'] * 1e3:9.1f} ms   peak {r[v]['peak_bytes'] / mib:9.1f} MiB")
    out = {"max_abs_diff": diff,
           "memory_ratio": r["dense"]["peak_bytes"] / max(r["classwise"]["peak_bytes"], 1),
           "speed_ratio": r["dense"]["seconds"] / r["classwise"]["seconds"],
           "cdgc_vs_backbone": r["cdgc"]["seconds"] / r["backbone"]["seconds"]}
    print(f"  max |classwise - dense| = {diff:.2e} (target <= 1e-5); dense / classwise: memory "
          f"{out['memory_ratio']:.1f}x (target >= 3), time {out['speed_ratio']:.1f}x (target >= 2)")
    print(f"CDGC module (2 layers) {r['cdgc']['seconds'] * 1e3:.1f} ms vs {args.backbone} backbone at "
          f"{args.image}x{args.image} {r['backbone']['seconds'] * 1e3:.1f} ms (forward + backward): "
          f"{out['cdgc_vs_backbone']:.3f}x (target <= 0.25)")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main(get_args_parser().parse_args())
