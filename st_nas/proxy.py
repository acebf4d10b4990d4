"""The stabilized share-parameter proxy (ST-NAS §3.2, abstract; Ning et al. 2021's reading: the
score is averaged over several parameter samples along the chain, not one snapshot).

    Proxy(a) = (1/M) sum_m top-1(a; θ^(m)),

θ^(m) the M parameter samples kept during phase 2, each evaluated after re-estimating BN
statistics for `a` on fixed training images, top-1 measured on the held-out training images.
The variants (`--proxy`) differ in the chain and in which samples they average:

- `sgld_avg`: phase 2 with SGLD noise (τ > 0), all M samples (ST-NAS);
- `sgd_last`: phase 2 without noise (τ = 0), the last weights only (the usual one-shot proxy);
- `sgd_avg`: phase 2 without noise, all M snapshots (temporal averaging without SGLD).
"""
from __future__ import annotations

from pathlib import Path

from shared.checkpoint import load_checkpoint
from st_nas.engine import calibrate_bn, evaluate

__all__ = ["chain_temperature", "select_snapshots", "ProxyEvaluator"]


def chain_temperature(proxy: str, temperature: float) -> float:
    """τ of phase 2 for a proxy variant: the sgd_* variants are measured on a noise-free chain."""
    return 0.0 if proxy.startswith("sgd") else float(temperature)


def select_snapshots(paths: list, proxy: str) -> list:
    """The samples a variant averages: the last one for sgd_last, all of them otherwise."""
    return list(paths[-1:]) if proxy == "sgd_last" else list(paths)


class ProxyEvaluator:
    """Top-1 of architectures on each parameter sample (BN re-calibrated per architecture and
    sample) and their mean. Loads one sample at a time into `model` (memory: one supernet), and
    visits each sample once per call, so evaluate a generation's candidates in one call."""

    def __init__(self, model, snapshots: list, calib_loader, val_loader, device, amp: bool = False,
                 print_freq: int = 1000):
        if not snapshots:
            raise ValueError("the proxy needs at least one parameter sample")
        self.model = model
        self.snapshots = [Path(p) for p in snapshots]
        self.calib, self.val = calib_loader, val_loader
        self.device, self.amp, self.print_freq = device, amp, print_freq
        self.images = None

    def accuracies(self, archs) -> list[list[float]]:
        """Per architecture, its top-1 on every sample, in sample order."""
        archs = list(archs)
        out: list[list[float]] = [[] for _ in archs]
        if not archs:
            return out
        for path in self.snapshots:
            self.model.load_state_dict(load_checkpoint(path, map_location=self.device)["model"])
            for k, arch in enumerate(archs):
                calibrate_bn(self.model, self.calib, self.device, self.amp, arch)
                res = evaluate(self.model, self.val, self.device, self.amp, arch, header=f"proxy {path.stem}",
                               print_freq=self.print_freq)
                out[k].append(res["top1"])
                self.images = res["images"]
        return out

    def __call__(self, archs) -> list[float]:
        return [sum(a) / len(a) for a in self.accuracies(archs)]
