"""Benchmark: what AENet's extra heads and our data pipeline cost, each against a baseline
measured in the same run.

1. Training step (forward, the loss, backward, SGD step) of AENet_C,S,G against the baseline C
   (the same ResNet-18 with only the live/spoof classifier): ratio of images per second.
2. Data: a training sample from ``SpoofDataset`` (decode, read the box, official crop, resize,
   ColorJitter, the depth / reflection maps) against a bare decode + resize of the same images.

Usage::

    python celeba_spoof/bench/bench_aenet.py            # 224 px, batch 32 (the paper's input)
    python celeba_spoof/bench/bench_aenet.py --quick    # 64 px, batch 16, fewer steps (< 1 min on 2 cores)
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.benchmark import Timer

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from celeba_spoof.data import SpoofDataset, load_split  # noqa: E402
from celeba_spoof.loss import AENetLoss, variant_terms  # noqa: E402
from celeba_spoof.model import AENet  # noqa: E402
from celeba_spoof.toy import make_toy_dataset  # noqa: E402


def _batch(n, size, g):
    return {"image": torch.rand(n, 3, size, size, generator=g), "live": torch.randint(0, 2, (n,), generator=g),
            "attribute": torch.randint(0, 2, (n, 40), generator=g).float(), "attack": torch.randint(0, 11, (n,), generator=g),
            "light": torch.randint(0, 5, (n,), generator=g), "env": torch.randint(0, 3, (n,), generator=g),
            "depth": torch.rand(n, 1, 14, 14, generator=g), "reflect": torch.rand(n, 3, 14, 14, generator=g),
            "depth_mask": torch.ones(n), "reflect_mask": torch.ones(n)}


def train_rate(variant: str, size: int, batch: int, steps: int) -> float:
    """Images per second of `steps` training steps (torch.utils.benchmark; one warm-up step)."""
    torch.manual_seed(0)
    terms = variant_terms(variant)
    model, crit = AENet(terms=terms), AENetLoss(terms)
    opt = torch.optim.SGD(model.parameters(), lr=5e-3, momentum=0.9)
    b = _batch(batch, size, torch.Generator().manual_seed(0))

    def step():
        loss = crit(model(b["image"]), b)["total"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    timer = Timer("step()", globals={"step": step}, num_threads=torch.get_num_threads())
    timer.timeit(1)  # warms up the allocator
    return batch / timer.timeit(steps).mean


def data_rates(root: Path, size: int, n: int) -> tuple[float, float]:
    samples = load_split(root, "intra_test", "train")["train"][:n]
    ds = SpoofDataset(samples, input_size=size, train=True)
    t0 = time.perf_counter()
    for i in range(len(ds)):
        ds[i]
    ours = len(ds) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for s in samples:
        with Image.open(s.path) as im:
            im.convert("RGB").resize((size, size))
    bare = len(samples) / (time.perf_counter() - t0)
    return ours, bare


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="64 px, batch 16, 4 steps, 200 images")
    p.add_argument("--size", type=int, default=224, help="input side")
    p.add_argument("--batch", type=int, default=32, help="images per step")
    p.add_argument("--steps", type=int, default=5, help="timed steps per variant")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats per variant (best kept)")
    p.add_argument("--images", type=int, default=500, help="images for the data benchmark")
    p.add_argument("--threads", type=int, default=1, help="torch threads (0 = torch's default); the ratios hold either way")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.quick:
        a.size, a.batch, a.steps, a.images = 64, 16, 4, 200
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, input {a.size} px, batch {a.batch}")
    # interleaved repeats, best of each: the cores may be shared with other jobs
    base = csg = 0.0
    for _ in range(a.repeats):
        base = max(base, train_rate("C", a.size, a.batch, a.steps))
        csg = max(csg, train_rate("CSG", a.size, a.batch, a.steps))
    print(f"train step   baseline C: {base:8.1f} img/s   AENet_C,S,G: {csg:8.1f} img/s   ratio CSG/C: {csg / base:.3f}")
    with tempfile.TemporaryDirectory() as tmp:
        root = make_toy_dataset(Path(tmp) / "toy", train_subjects=12, test_subjects=2)
        ours, bare = data_rates(root, a.size, a.images)
    print(f"data         decode+resize: {bare:8.1f} img/s   SpoofDataset (box, crop, jitter, maps): {ours:8.1f} img/s"
          f"   ratio: {ours / bare:.3f}")


if __name__ == "__main__":
    main()
