"""A full stage-2 search step (sandwich: max, min and 2 random architectures, then the gated
architecture pass with gradients for alpha only; 5 passes in all) against one plain forward +
backward + SGD step of the full network. Target: <= 5.5x.

    python bench/bench_step.py [--quick] [--device cpu|cuda] [--models resnet50 mobilenet_v2]
"""
from __future__ import annotations

import argparse

import torch

from dmcp.bench.timing import time_pair
from dmcp.derive import export_pruned
from dmcp.engine import SearchState, param_groups, search_step
from dmcp.supernet import build_supernet


class Args:
    num_sample, label_smoothing, distill_weight, distill_temperature = 4, 0.0, 1.0, 1.0
    random_decay, random_decay_every, arch_train_freq = 0.9999, 10, 1
    budget_loss, budget_weight, budget_band = "log_l1", 0.1, 0.95


def bench(model, max_width, batch, size, repeats, device):
    torch.manual_seed(0)
    net = build_supernet(model, input_size=size, max_width=max_width).to(device).train()
    plain = export_pruned(net).to(device).train()
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, 1000, (batch,), device=device)
    args = Args()
    args.flops = float(net.madds(net.full_channels())) / 2e6
    opt_w = torch.optim.SGD(param_groups(net.net, 1e-4), lr=1e-3, momentum=0.9)
    opt_a = torch.optim.SGD(net.arch_parameters(), lr=0.5, momentum=0.9)
    opt_p = torch.optim.SGD(param_groups(plain, 1e-4), lr=1e-3, momentum=0.9)
    state = SearchState(total_steps=10**6, arch_start=0, seed=0)
    amp = device.type == "cuda"

    def plain_step():
        opt_p.zero_grad(set_to_none=True)
        with torch.autocast("cuda", torch.bfloat16, enabled=amp):
            out = plain(x)
        torch.nn.functional.cross_entropy(out.float(), y).backward()
        opt_p.step()

    def dmcp_step():
        search_step(net, x, y, opt_w, opt_a, state, args, amp)

    return time_pair(plain_step, dmcp_step, repeats)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small inputs, few repeats (make bench)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--models", nargs="+", default=["resnet50", "mobilenet_v2"])
    args = p.parse_args(argv)
    device = torch.device(args.device)
    batch, size, repeats = (8, 112, 4) if args.quick else ((64, 224, 10) if device.type == "cuda" else (8, 224, 3))
    print(f"stage-2 DMCP step vs plain forward+backward+SGD, batch {batch} x {size}^2, {device}")
    for model in args.models:
        mw = 1.5 if model == "mobilenet_v2" else 1.0
        t_plain, t_step = bench(model, mw, batch, size, repeats, device)
        print(f"  {model}{' 1.5x' if mw != 1.0 else ''}: plain {t_plain * 1e3:8.1f} ms  DMCP step {t_step * 1e3:8.1f} ms  "
              f"ratio {t_step / t_plain:.2f}x (5 passes; target <= 5.5x)")


if __name__ == "__main__":
    main()
