"""Cost of the supernet's single-path step and of the SGLD noise, against baselines measured in
the same run (torch.utils.benchmark.Timer, median over blocked runs).

    python bench/bench_step.py [--quick] [--device cpu|cuda] [--batch 64] [--size 32]

1. path step / plain child step: forward, loss, backward and optimizer step of one architecture
   through the supernet (every op of the space allocated, optimizer over all of them) against the
   same architecture as a plain `ChildNet`. Target <= 1.15.
2. SGLD step / SGD step: the same supernet path step with SGLD noise (τ > 0) against τ = 0
   (which is SGD bit for bit). Target <= 1.05.
The last line is JSON: {"path_vs_child", "sgld_vs_sgd", ...}.
"""
from __future__ import annotations

import argparse
import json
import sys

import torch
from torch import nn
from torch.utils.benchmark import Timer

from st_nas.engine import param_groups
from st_nas.model import Supernet, build_child
from st_nas.ranking import toy_args
from st_nas.sgld import NOISE, SGLD, step_generator
from st_nas.space import Skeleton, sample_arch


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser("bench_step", add_help=add_help)
    p.add_argument("--quick", action="store_true", help="fewer repetitions")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size", type=int, default=32, help="input side (< 128: the toy config's skeleton); 224 = the paper's")
    return p


def skeleton_for(size: int) -> Skeleton:
    if size >= 128:
        return Skeleton(input_size=size)  # MobileNetV2-1.0 skeleton, the paper's configs
    return Skeleton.from_args(toy_args(["--input-size", str(size)]), 10)  # configs/toy.yaml


def step_fn(model, optimizer, x, y, arch=None, noise_device=None):
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)
    counter = [0]

    def step():
        out = model(x) if arch is None else model(x, arch)
        loss = crit(out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if noise_device is not None:
            optimizer.step(generator=step_generator(0, counter[0], NOISE, noise_device))
        else:
            optimizer.step()
        counter[0] += 1
    return step


def time_it(fn, device, quick: bool) -> float:
    for _ in range(2):  # warm-up
        fn()
    sync = "torch.cuda.synchronize()" if torch.device(device).type == "cuda" else ""
    t = Timer(stmt=f"fn(); {sync}" if sync else "fn()", globals={"fn": fn, "torch": torch})
    m = t.blocked_autorange(min_run_time=1.0 if quick else 5.0)
    return m.median


def main(args):
    torch.manual_seed(0)
    device = torch.device(args.device)
    sk = skeleton_for(args.size)
    net = Supernet(sk).to(device)
    arch = sample_arch(sk, torch.Generator().manual_seed(0))
    child = build_child(net, arch)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    y = torch.randint(0, sk.num_classes, (args.batch,), device=device)
    n = 10_000
    path = time_it(step_fn(net, SGLD(param_groups(net, 4e-5), lr=0.01, temperature=0.0, dataset_size=n,
                                     momentum=0.9), x, y, arch), device, args.quick)
    plain = time_it(step_fn(child, torch.optim.SGD(param_groups(child, 4e-5), lr=0.01, momentum=0.9), x, y),
                    device, args.quick)
    sgld = time_it(step_fn(net, SGLD(param_groups(net, 4e-5), lr=0.01, temperature=1.0, dataset_size=n),
                           x, y, arch, noise_device=device), device, args.quick)
    sgd = time_it(step_fn(net, SGLD(param_groups(net, 4e-5), lr=0.01, temperature=0.0, dataset_size=n),
                          x, y, arch), device, args.quick)
    res = {"device": str(device), "batch": args.batch, "size": args.size, "path_step_ms": path * 1e3,
           "child_step_ms": plain * 1e3, "path_vs_child": path / plain, "sgld_step_ms": sgld * 1e3,
           "sgd_step_ms": sgd * 1e3, "sgld_vs_sgd": sgld / sgd,
           "supernet_params": sum(p.numel() for p in net.parameters()),
           "child_params": sum(p.numel() for p in child.parameters())}
    print(f"path step {path * 1e3:.1f} ms vs plain child {plain * 1e3:.1f} ms: x{path / plain:.3f} (target <= 1.15)")
    print(f"SGLD step {sgld * 1e3:.1f} ms vs SGD step {sgd * 1e3:.1f} ms: x{sgld / sgd:.3f} (target <= 1.05)")
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main(get_args_parser().parse_args(sys.argv[1:]))
