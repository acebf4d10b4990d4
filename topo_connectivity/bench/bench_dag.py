"""Learned-DAG stages against the hand-wired networks they generalise: forward + backward time
and (on CUDA) peak memory, measured in the same run. Target: <= 1.2x time, <= 1.3x CUDA peak memory.

    python bench/bench_dag.py [--quick] [--device auto|cpu|cuda] [--models mobilenet_v2 resnet50]

Pairs: `learned` (complete graph, one trainable weight per edge: what TopoNet trains) vs the
hand-wired network (torchvision's mobilenet_v2; a pre-activation ResNet-50 written as plain
residual blocks, `hand_wired`); `residual` (the same DAG frozen at 1) is printed too, as the cost of
the framework alone. bf16 autocast on CUDA (the training setting), fp32 on CPU. Times: the best of
5 interleaved rounds, each the median of a torch.utils.benchmark measurement; peak memory is
torch.cuda.max_memory_allocated of one step (only when CUDA exists; on CPU it is not measured).
The last line is JSON with every ratio.
"""
from __future__ import annotations

import argparse
import json

import torch
import torchvision
from torch.utils import benchmark

from topo_connectivity import build_model, hand_wired


def baseline(name: str):
    if name == "mobilenet_v2":
        return torchvision.models.mobilenet_v2(weights=None)
    return hand_wired(build_model("resnet50", "residual", 1000))


def step_fn(model, x, y, device):
    amp = device.type == "cuda"

    def step():
        model.zero_grad(set_to_none=True)
        with torch.autocast("cuda", torch.bfloat16, enabled=amp):
            out = model(x)
        torch.nn.functional.cross_entropy(out.float(), y).backward()
    return step


def peak_mib(step, device) -> float | None:
    if device.type != "cuda":
        return None
    step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    step()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def bench(name: str, batch: int, size: int, min_time: float, device, rounds: int = 5) -> dict:
    torch.manual_seed(0)
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, 1000, (batch,), device=device)
    models = {"hand-wired": baseline(name), "residual": build_model(name, "residual", 1000),
              "learned": build_model(name, "learned", 1000)}
    steps = {}
    for label, m in models.items():
        steps[label] = step_fn(m.to(device).train(), x, y, device)
        steps[label]()  # warm-up (cuDNN autotuning, allocator)
    times = {label: [] for label in steps}
    for _ in range(rounds):  # interleaved, so a shared machine's load hits every model alike
        for label, step in steps.items():
            t = benchmark.Timer("step()", globals={"step": step}).blocked_autorange(min_run_time=min_time / rounds)
            times[label].append(t.median)
    out = {label: {"ms": min(times[label]) * 1e3, "peak_mib": peak_mib(step, device)} for label, step in steps.items()}
    hw = out["hand-wired"]
    res = {"model": name, "batch": batch, "size": size, "device": str(device)}
    for label in ("residual", "learned"):
        res[f"{label}_time_ratio"] = out[label]["ms"] / hw["ms"]
        if hw["peak_mib"]:
            res[f"{label}_mem_ratio"] = out[label]["peak_mib"] / hw["peak_mib"]
    for label, v in out.items():
        mem = f", peak {v['peak_mib']:.0f} MiB" if v["peak_mib"] is not None else ""
        print(f"{name:13s} {label:10s} fwd+bwd {v['ms']:8.1f} ms{mem}")
    mem = (f", memory x{res['learned_mem_ratio']:.2f} (target <= 1.3)" if "learned_mem_ratio" in res
           else ", memory: not measured (no CUDA)")
    print(f"{name:13s} learned / hand-wired: time x{res['learned_time_ratio']:.2f} (target <= 1.2){mem}; "
          f"residual framework alone x{res['residual_time_ratio']:.2f}")
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small batch and resolution, short timing (CPU-friendly)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--models", nargs="+", default=["mobilenet_v2", "resnet50"], choices=["mobilenet_v2", "resnet50"])
    p.add_argument("--batch", type=int, default=0, help="batch (default: 64 on CUDA, 8 on CPU; 2 with --quick)")
    p.add_argument("--size", type=int, default=0, help="input resolution (default 224; 112 with --quick)")
    args = p.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    batch = args.batch or (2 if args.quick else (64 if device.type == "cuda" else 8))
    size = args.size or (112 if args.quick else 224)
    results = [bench(m, batch, size, 0.5 if args.quick else 3.0, device) for m in args.models]
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
