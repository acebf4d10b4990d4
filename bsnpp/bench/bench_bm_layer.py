"""Benchmark: fused BMLayer against BMN's dense BM layer + Conv3d (forward + backward, CPU).

    python bsnpp/bench/bench_bm_layer.py                 # T=100, N=32, C=256, out=512, batch 16
    python bsnpp/bench/bench_bm_layer.py --quick         # batch 2, 2 iterations: a smoke run

Each variant runs in a fresh subprocess (``--worker``) so that their memory does not mix.
Peak memory is measured with the kernel's high-water mark: on CPU torch allocates through the
system allocator, so ``getrusage(RUSAGE_SELF).ru_maxrss`` at the end minus the resident set size
after the layer, inputs and upstream gradient are built (and garbage-collected) is the extra
memory the forward + backward needed at its peak (intermediates, gradients, workspaces).
Times are per iteration (forward + backward, gradients of the input and of the weights),
``torch.utils.benchmark.Timer`` over ``--iters`` iterations after its two warm-up runs (the
backward time is the iteration's minus the forward's). Both variants get the same weights,
input and upstream gradient (from ``--seed``); the parent compares their outputs and gradients.
The dense variant needs about 4x its intermediate (the [B, C, N, T, T] map, its gradient, and
oneDNN's reordered copies of both for the Conv3d): ~1.3 GB per video at C=256, T=100, so ~20 GB
at batch 16. It is skipped (say so, and ``--force`` overrides) when that estimate exceeds 80 %
of MemAvailable, rather than pushing a shared machine into the OOM killer.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile

if not __package__:    # run as a file: make `bsnpp` importable even before an editable reinstall
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("BM layer benchmark", add_help=add_help)
    p.add_argument("--batch", type=int, default=16, help="videos per batch")
    p.add_argument("--tscale", type=int, default=100, help="temporal scale T")
    p.add_argument("--num-sample", type=int, default=32, help="N, points per proposal")
    p.add_argument("--in-channels", type=int, default=256, help="C")
    p.add_argument("--out-channels", type=int, default=512, help="Conv3d output channels")
    p.add_argument("--iters", type=int, default=5, help="timed iterations per variant")
    p.add_argument("--variants", default="fused,dense", help="comma list of fused, dense")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="batch 2, 2 iterations")
    p.add_argument("--no-check", action="store_true", help="skip the equality check")
    p.add_argument("--force", action="store_true",
                   help="run the dense variant even when it looks too big for the free memory")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--outdir", default=None, help=argparse.SUPPRESS)
    return p


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _maxrss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024    # Linux: KiB


def worker(args):
    import gc

    import torch
    from torch.utils.benchmark import Timer

    from bsnpp.bm_layer import BMLayer, DenseBMLayer

    B, T, N, C, Co = args.batch, args.tscale, args.num_sample, args.in_channels, args.out_channels
    cls = {"fused": BMLayer, "dense": DenseBMLayer}[args.worker]
    layer = cls(C, Co, T, num_sample=N)
    g = torch.Generator().manual_seed(args.seed)
    bound = 1.0 / (C * N) ** 0.5
    with torch.no_grad():
        layer.conv3d.weight.copy_((torch.rand(Co, C, N, 1, 1, generator=g) * 2 - 1) * bound)
        layer.conv3d.bias.copy_((torch.rand(Co, generator=g) * 2 - 1) * bound)
    x = torch.randn(B, C, T, generator=g).requires_grad_(True)
    grad_out = torch.randn(B, Co, T, T, generator=g)
    gc.collect()
    base_rss = _rss_bytes()

    def step():
        layer.zero_grad(set_to_none=True)
        x.grad = None
        layer(x).backward(grad_out)

    threads = torch.get_num_threads()  # Timer would otherwise time on one thread
    fwd = Timer("layer(x)", globals={"layer": layer, "x": x}, num_threads=threads).timeit(args.iters).median
    it = Timer("step()", globals={"step": step}, num_threads=threads).timeit(args.iters).median
    layer.zero_grad(set_to_none=True)
    x.grad = None
    out = layer(x)
    out.backward(grad_out)
    peak = _maxrss_bytes() - base_rss
    result = {
        "variant": args.worker, "threads": torch.get_num_threads(),
        "fwd_s": fwd, "bwd_s": it - fwd, "iter_s": it,
        "peak_extra_bytes": peak, "base_rss_bytes": base_rss,
    }
    if args.outdir:
        torch.save({"out": out.detach().contiguous(), "grad_x": x.grad,
                    "grad_w": layer.conv3d.weight.grad, "grad_b": layer.conv3d.bias.grad},
                   os.path.join(args.outdir, f"{args.worker}.pt"))
    print("RESULT " + json.dumps(result), flush=True)


def _mem_available_bytes():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def run_variant(args, variant, outdir):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", variant,
           "--batch", str(args.batch), "--tscale", str(args.tscale),
           "--num-sample", str(args.num_sample), "--in-channels", str(args.in_channels),
           "--out-channels", str(args.out_channels), "--iters", str(args.iters), "--seed", str(args.seed)]
    if outdir:
        cmd += ["--outdir", outdir]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main(args):
    if args.quick:
        args.batch, args.iters = 2, 2
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    B, T, N, C, Co = args.batch, args.tscale, args.num_sample, args.in_channels, args.out_channels
    print(f"BM layer fwd+bwd, CPU: batch {B}, T={T}, N={N}, C={C}, out={Co}; "
          f"mean of {args.iters} iterations after 2 warm-up runs")
    from bsnpp.bm_layer import _csr_structures
    nnz = _csr_structures(T, N, 3, 0.5)[0][0].numel()
    dense_macs = B * C * T * N * T * T + B * Co * C * N * T * T
    fused_macs = B * T * C * N * Co + B * nnz * Co
    print(f"forward MACs: dense {dense_macs / 1e9:.1f} G (matmul + Conv3d), "
          f"fused {fused_macs / 1e9:.1f} G (GEMM + sparse, {nnz} non-zeros)")

    if "dense" in variants:
        need = 4 * B * C * N * T * T * 4
        avail = _mem_available_bytes()
        print(f"dense needs about {need / 2**30:.1f} GiB; available {avail / 2**30:.1f} GiB")
        if avail is not None and need > 0.8 * avail and not args.force:
            print("dense skipped: not enough free memory (use --force, or a smaller --batch)")
            variants.remove("dense")
    check = not args.no_check and {"fused", "dense"} <= set(variants)
    with tempfile.TemporaryDirectory(prefix="bench_bm_") as tmp:
        results = {}
        for v in variants:
            r = run_variant(args, v, tmp if check else None)
            results[v] = r
            print(f"{v:>6}: {r['iter_s']:.3f} s/iter (fwd {r['fwd_s']:.3f}, bwd {r['bwd_s']:.3f}), "
                  f"peak extra memory {r['peak_extra_bytes'] / 2**20:,.0f} MiB "
                  f"(threads {r['threads']})", flush=True)
        if {"fused", "dense"} <= set(results):
            f, d = results["fused"], results["dense"]
            print(f"ratios dense/fused: time {d['iter_s'] / f['iter_s']:.1f}x, "
                  f"peak memory {d['peak_extra_bytes'] / max(f['peak_extra_bytes'], 1):.1f}x")
        if check:
            import torch
            a = torch.load(os.path.join(tmp, "fused.pt"), weights_only=True)
            b = torch.load(os.path.join(tmp, "dense.pt"), weights_only=True)
            diffs = ", ".join(
                f"{k} {(a[k] - b[k]).abs().max().item():.2e} (of max {b[k].abs().max().item():.2g})"
                for k in ["out", "grad_x", "grad_w", "grad_b"])
            print(f"max abs diff fused vs dense: {diffs}")


if __name__ == "__main__":
    args = get_args_parser().parse_args()
    if args.worker:
        worker(args)
    else:
        main(args)
