"""The paper's central claim, measured: how well each proxy ranks architectures by their
stand-alone accuracy (Kendall τ), and how stable its ranking is across supernet seeds.

For a fixed set of architectures spread over the MAdds range of the space:
1. stand-alone top-1: each trained from scratch (train.py's `retrain`) and evaluated on val/;
2. per supernet seed: phase 1, then two phase-2 chains from the same end-of-phase-1 weights and
   the same data order, one with SGLD noise (τ) and one without (τ = 0); the proxies
   sgld_avg (mean over the SGLD samples), sgd_avg (mean over the noise-free snapshots) and
   sgd_last (the last noise-free weights) of every architecture;
3. `kendall_tau[v]`: scipy's Kendall τ between the proxy `v` and the stand-alone top-1 (per seed
   and their mean); `stability_tau[v]`: τ between the proxies of two supernet seeds.

bench/bench_proxy.py and claims.py call `measure`.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

from shared import checkpoint as ckpt_lib
from shared import config, dist
from shared.device import resolve_device
from st_nas.data import load_splits
from st_nas.model import Supernet
from st_nas.options import HERE
from st_nas.phases import SearchData, train_supernet
from st_nas.proxy import ProxyEvaluator
from st_nas.space import Skeleton, arch_madds, arch_to_json, sample_within

__all__ = ["VARIANTS", "QUICK", "pick_architectures", "standalone", "supernet_proxies", "measure", "toy_args"]

logger = logging.getLogger("st_nas")
VARIANTS = ("sgld_avg", "sgd_last", "sgd_avg")
# the measurement's smaller toy setting (bench_proxy --quick, claims.py's default): 1,300 training
# images, 10 + 3 supernet epochs, 3 samples, 8 stand-alone epochs; its own toy folder (other sizes)
QUICK = ["--toy-train-per-class", "130", "--toy-val-per-class", "30", "--supernet-epochs", "10", "--sgld-epochs", "3",
         "--snapshots", "3", "--retrain-epochs", "8", "--search-val-per-class", "15"]


def toy_args(overrides: list[str] | None = None):
    """search.py's arguments for configs/toy.yaml, with command-line style overrides."""
    from st_nas.search import get_args_parser

    return config.parse_args(get_args_parser(), ["--config", str(HERE / "configs" / "toy.yaml"), *(overrides or [])])


def pick_architectures(skeleton: Skeleton, count: int, limit: float, seed: int = 0, pool: int = 400) -> list:
    """`count` architectures at evenly spaced MAdds quantiles of `pool` random ones under `limit`
    (so that the set spans cheap and costly networks), the same for every supernet seed."""
    g = torch.Generator().manual_seed(10_000 + seed)
    cands = {}
    while len(cands) < pool:
        a = sample_within(skeleton, g, 0, limit)
        if a is not None:
            cands[a] = arch_madds(skeleton, a)
    order = sorted(cands, key=cands.get)
    picks = np.linspace(0, len(order) - 1, count).round().astype(int)
    return [order[i] for i in picks]


def standalone(args, archs, skeleton: Skeleton, splits: dict, device, out_dir: Path, seeds=(0,)) -> list[float]:
    """Stand-alone val top-1 of each architecture (mean over `seeds`), trained from scratch; a
    training already in `out_dir` resumes from its checkpoint (a finished one is only read)."""
    from st_nas.train import retrain

    tops = []
    for k, arch in enumerate(archs):
        record = {"stages": arch_to_json(arch, skeleton), "skeleton": skeleton.to_dict(),
                  "madds": arch_madds(skeleton, arch)}
        accs = []
        for s in seeds:
            args.seed = s
            run_dir = out_dir / f"arch_{k:02d}_seed{s}"
            last = ckpt_lib.latest_checkpoint(run_dir) if run_dir.is_dir() else None
            accs.append(retrain(args, record, run_dir, device, splits, resume_from=last)["top1"])
        tops.append(float(np.mean(accs)))
        logger.info("stand-alone %d/%d: %.2fM MAdds, top-1 %.2f", k + 1, len(archs), record["madds"] / 1e6, tops[-1])
    return tops


def supernet_proxies(args, archs, skeleton: Skeleton, splits: dict, device, out_dir: Path, seed: int) -> dict:
    """{variant: proxy per architecture} for one supernet seed (phase 1 once, two phase-2 chains)."""
    args.seed = seed
    data = SearchData.build(args, splits, device)
    per_chain = {}
    for tau, name in ((args.temperature, "sgld"), (0.0, "sgd")):
        torch.manual_seed(seed)
        model = Supernet(skeleton, args.zero_init_residual).to(device)
        dist.seed_everything(seed)
        run_dir = out_dir / f"seed{seed}_{name}"
        run_dir.mkdir(parents=True, exist_ok=True)
        start = out_dir / f"seed{seed}_sgld" / "checkpoint_supernet.pt" if name == "sgd" else None
        samples = train_supernet(args, model, data, device, run_dir, tau, resume_from=start)
        ev = ProxyEvaluator(model, samples, data.calib, data.search_val, device, print_freq=10**6)
        per_chain[name] = ev.accuracies(archs)
    return {"sgld_avg": [float(np.mean(a)) for a in per_chain["sgld"]],
            "sgd_last": [float(a[-1]) for a in per_chain["sgd"]],
            "sgd_avg": [float(np.mean(a)) for a in per_chain["sgd"]],
            "per_snapshot": per_chain}


def _tau(a, b) -> float:
    t = kendalltau(a, b).statistic
    return float(t) if np.isfinite(t) else 0.0


def measure(args, out_dir: Path, *, archs: int = 10, seeds=(0, 1), standalone_seeds=(0,)) -> dict:
    """The whole measurement; returns (and writes to out_dir/ranking.json) the figures."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(args.device)
    t0 = time.perf_counter()
    splits = load_splits(args, train=True, val=True)
    skeleton = Skeleton.from_args(args, len(splits["classes"]))
    chosen = pick_architectures(skeleton, archs, args.madds_limit * 1e6)
    top1 = standalone(args, chosen, skeleton, splits, device, out_dir / "standalone", standalone_seeds)
    proxies = {s: supernet_proxies(args, chosen, skeleton, splits, device, out_dir / "supernet", s) for s in seeds}
    per_seed = {v: [_tau(proxies[s][v], top1) for s in seeds] for v in VARIANTS}
    pairs = [(a, b) for i, a in enumerate(seeds) for b in seeds[i + 1:]]
    stability = {v: [_tau(proxies[a][v], proxies[b][v]) for a, b in pairs] for v in VARIANTS}
    out = {"kendall_tau": {v: float(np.mean(t)) for v, t in per_seed.items()},
           "kendall_tau_per_seed": per_seed, "seeds": list(seeds),
           "stability_tau": {v: float(np.mean(t)) if t else None for v, t in stability.items()},
           "stability_tau_per_pair": {v: t for v, t in stability.items()}, "seed_pairs": pairs,
           "proxy": {v: {str(s): proxies[s][v] for s in seeds} for v in VARIANTS},
           "proxy_per_snapshot": {str(s): proxies[s]["per_snapshot"] for s in seeds},
           "standalone_top1": top1, "standalone_seeds": list(standalone_seeds),
           "archs": [arch_to_json(a, skeleton) for a in chosen],
           "madds": [arch_madds(skeleton, a) for a in chosen], "temperature": args.temperature,
           "seconds": time.perf_counter() - t0}
    (out_dir / "ranking.json").write_text(json.dumps(out, indent=1) + "\n")
    return out
