"""Gated max-width forward + backward (the architecture pass) against the plain torchvision
network's forward + backward, same weights and input. Target: <= 1.3x.

The gate is folded into BN's affine (ResNet) or is one broadcast multiply after ReLU6
(MobileNetV2's expansion and depthwise outputs); the official AlphaLayer copied every activation
several times (transpose, split, view, concatenate).

    python bench/bench_gate.py [--quick] [--device cpu|cuda] [--models resnet50 mobilenet_v2]
"""
from __future__ import annotations

import argparse

import torch

from dmcp.bench.timing import time_pair
from dmcp.derive import export_pruned
from dmcp.supernet import build_supernet


def bench(model: str, max_width: float, batch: int, size: int, repeats: int, device) -> tuple[float, float]:
    torch.manual_seed(0)
    net = build_supernet(model, input_size=size, max_width=max_width).to(device).train()
    plain = export_pruned(net).to(device).train()
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, 1000, (batch,), device=device)
    with torch.no_grad():
        for g in net.gates:
            g.alpha.uniform_(0, 3)

    def plain_step():
        plain.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(plain(x), y).backward()

    def gated_step():
        net.zero_grad(set_to_none=True)
        net.set_scaling(True)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        net.set_scaling(False)

    return time_pair(plain_step, gated_step, repeats)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small inputs, few repeats (make bench)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--models", nargs="+", default=["resnet50", "mobilenet_v2"])
    args = p.parse_args(argv)
    device = torch.device(args.device)
    batch, size, repeats = (8, 112, 6) if args.quick else ((64, 224, 10) if device.type == "cuda" else (16, 224, 5))
    print(f"gated max-width forward+backward vs plain, batch {batch} x {size}^2, {device}")
    for model in args.models:
        mw = 1.5 if model == "mobilenet_v2" else 1.0
        t_plain, t_gated = bench(model, mw, batch, size, repeats, device)
        print(f"  {model}{' 1.5x' if mw != 1.0 else ''}: plain {t_plain * 1e3:8.1f} ms  gated {t_gated * 1e3:8.1f} ms  "
              f"ratio {t_gated / t_plain:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
