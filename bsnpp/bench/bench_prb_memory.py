"""Benchmark: peak memory of the proposal relation block (PRB), forward + backward, at THUMOS's
T = 128 and batch 16, with the chunked position attention against the first version's full
masked attention.

    python bsnpp/bench/bench_prb_memory.py            # T=128, batch 16, 128 channels (minutes on CPU)
    python bsnpp/bench/bench_prb_memory.py --quick    # T=48, batch 4

The PRB (``bsnpp.model.ProposalRelationBlock``, both branches, three heads) runs on a random map
``[B, 128, T, T]`` and is back-propagated from a random upstream gradient. Variants:

* ``chunked``: the model's ``PositionAttention`` (queries in chunks of at most 256 MiB of scores,
  each under activation checkpointing);
* ``full``: the first version, every cell a key with the invalid ones masked, in one
  ``scaled_dot_product_attention`` call: on a backend without a memory-efficient kernel for this
  shape it materialises ``B * (T*T)^2`` scores (16 GiB in fp32 at T = 128, batch 16) and their
  gradient.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` above what the inputs hold; on CPU the
process high-water mark (``ru_maxrss``) above the resident set once the inputs exist, each variant
in a fresh subprocess. A variant whose estimate exceeds 80 % of the free memory is run at batch 1
instead and its figure is scaled to the batch (said so in the output). ``--time`` (on with
``--quick``) also times an iteration with torch.utils.benchmark.
The last line is JSON ``{"device", "tscale", "batch", "chunked_peak_mib", "full_peak_mib",
"full_measured_batch", "target_mib"}``.
"""
import argparse
import json
import os
import resource
import subprocess
import sys

if not __package__:    # run as a file: make `bsnpp` importable even before an editable reinstall
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

TARGET_MIB = 8 * 1024


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("PRB peak-memory benchmark", add_help=add_help)
    p.add_argument("--batch", type=int, default=16, help="videos per batch")
    p.add_argument("--tscale", type=int, default=128, help="T (THUMOS14 window: 128)")
    p.add_argument("--channels", type=int, default=128, help="map channels (BSN++/BMN: 128)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--quick", action="store_true", help="T=48, batch 4")
    p.add_argument("--force", action="store_true", help="run the full variant at the batch even if it looks too big")
    p.add_argument("--time", action="store_true", help="also time an iteration (torch.utils.benchmark; 3 more runs)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _full_attention_forward(self, x, mask):
    """The PRB's position attention as first written (every cell a key, invalid keys masked)."""
    import torch.nn.functional as F

    b, c, d, t = x.shape
    q = self.q(x).flatten(2).transpose(1, 2).unsqueeze(1)
    k = self.k(x).flatten(2).transpose(1, 2).unsqueeze(1)
    v = self.v(x).flatten(2).transpose(1, 2).unsqueeze(1)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.flatten().view(1, 1, 1, -1), scale=1.0)
    return self.gamma * out.squeeze(1).transpose(1, 2).reshape(b, c, d, t) + x


def worker(args):
    import gc

    import torch
    from torch.utils.benchmark import Timer

    from bsnpp.labels import valid_map_mask
    from bsnpp.model import PositionAttention, ProposalRelationBlock

    device = torch.device(args.device)
    if args.worker == "full":
        PositionAttention.forward = _full_attention_forward
    torch.manual_seed(0)
    prb = ProposalRelationBlock(args.channels, "both").to(device)
    x = torch.randn(args.batch, args.channels, args.tscale, args.tscale, device=device, requires_grad=True)
    mask = torch.tensor(valid_map_mask(args.tscale, args.tscale), device=device)
    grads = [torch.randn(args.batch, 2, args.tscale, args.tscale, device=device) for _ in range(3)]

    def step():
        heads = prb(x, mask)
        torch.autograd.backward(heads, grads)
        x.grad = None
        prb.zero_grad(set_to_none=True)

    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_bytes()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    seconds = None
    if args.time:  # Timer warms up twice before it measures: off by default at full size on CPU
        seconds = Timer("step()", globals={"step": step}, num_threads=torch.get_num_threads()).timeit(1).median
    print("RESULT " + json.dumps({"peak_bytes": peak, "seconds": seconds}), flush=True)


def _free_bytes(device):
    if device == "cuda":
        import torch
        return torch.cuda.mem_get_info()[0]
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def run_variant(args, variant, batch):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", variant, "--batch", str(batch),
           "--tscale", str(args.tscale), "--channels", str(args.channels), "--device", args.device]
    if args.time:
        cmd.append("--time")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main(args):
    import torch

    if args.quick:
        args.tscale, args.batch, args.time = 48, 4, True
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    T, B, C = args.tscale, args.batch, args.channels
    n = T * T
    print(f"PRB (position + channel attention, three heads) fwd+bwd on {args.device}: batch {B}, T={T} "
          f"({n} cells, {T * (T + 1) // 2} valid), {C} channels, fp32")
    chunked = run_variant(args, "chunked", B)
    def secs(r):
        return f", {r['seconds']:.2f} s/iter" if r["seconds"] is not None else ""

    print(f"chunked: peak {chunked['peak_bytes'] / 2**20:,.0f} MiB{secs(chunked)}", flush=True)
    need = 3 * B * n * n * 4  # scores, their softmax and one gradient, fp32
    free = _free_bytes(args.device)
    full_batch = B
    if free is not None and need > 0.8 * free and not args.force:
        full_batch = 1
        print(f"full: needs about {need / 2**30:.1f} GiB at batch {B}, {free / 2**30:.1f} GiB free: measured at "
              f"batch 1 and scaled by {B}")
    full = run_variant(args, "full", full_batch)
    full_peak = full["peak_bytes"] * B / full_batch
    print(f"full:    peak {full_peak / 2**20:,.0f} MiB{f' (batch-1 figure x {B})' if full_batch != B else ''}"
          f"{secs(full)} at batch {full_batch}")
    print(f"ratio full/chunked peak memory: {full_peak / max(chunked['peak_bytes'], 1):.1f}x; "
          f"target <= {TARGET_MIB} MiB: {'met' if chunked['peak_bytes'] <= TARGET_MIB * 2**20 else 'NOT met'}")
    print(json.dumps({"device": args.device, "tscale": T, "batch": B,
                      "chunked_peak_mib": round(chunked["peak_bytes"] / 2**20, 1),
                      "full_peak_mib": round(full_peak / 2**20, 1), "full_measured_batch": full_batch,
                      "target_mib": TARGET_MIB}))


if __name__ == "__main__":
    a = get_args_parser().parse_args()
    if a.worker:
        worker(a)
    else:
        main(a)
