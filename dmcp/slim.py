"""Slimmable layers: torchvision's conv / BN / linear layers that run on their first channels.

`make_prunable` (supernet.py) turns the plain `nn.Conv2d`, `nn.BatchNorm2d` and `nn.Linear`
modules of a torchvision network into these subclasses in place (same parameters, same state-dict
keys), so one set of weights serves every width (the sandwich passes, Fig. 2a):

* a conv produces the first `gate.active` channels of its output gate and reads however many
  channels arrive (a depthwise conv keeps as many as it reads);
* BN normalises the channels that arrive, with the matching slices of its statistics, and, when
  its gate is in architecture mode, folds the gate into its affine transform:
  gate * BN(x) = (x - mu) / sigma * (gate * w) + gate * b - one per-channel scale, no extra
  activation (BN -> gate -> ReLU, Fig. 2b);
* MobileNetV2's expansion and depthwise outputs are gated after ReLU6 (official code); a conv is
  linear in each input channel, so that gate is folded into the weights of the conv that reads
  them (`in_gate`): conv(gate * h, W) = conv(h, W * gate) - a weight-sized multiply, no extra
  activation.

Slicing the first channels is what the official US-Net layers do; the gate replaces their
per-group copies and concatenations of every activation.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dmcp.markov import MarkovGate

__all__ = ["SlimConv2d", "SlimBatchNorm2d", "SlimLinear", "slim_", "attach"]


def attach(module: nn.Module, attr: str, gate: MarkovGate | None) -> None:
    """Point a layer at its gate without registering the gate as a submodule (the gates live in
    the supernet's ModuleList; registering them here too would duplicate them in state dicts)."""
    object.__setattr__(module, attr, gate)


class SlimConv2d(nn.Conv2d):
    """nn.Conv2d whose output width follows `out_gate.active` (None: fixed width); in the
    architecture pass its input channels are scaled by `in_gate` (if any) through its weights."""

    out_gate: MarkovGate | None = None
    in_gate: MarkovGate | None = None
    depthwise: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cin = x.shape[1]
        scale = None
        if self.in_gate is not None and self.in_gate.scaling:
            scale = self.in_gate.scale(cin, self.weight.dtype)
        if self.depthwise:
            weight = self.weight if cin == self.out_channels else self.weight[:cin]
            if scale is not None:
                weight = weight * scale.view(-1, 1, 1, 1)
            bias = None if self.bias is None else self.bias[:cin]
            return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, cin)
        gate = self.out_gate
        cout = self.out_channels if gate is None or gate.active is None else gate.active
        weight = self.weight
        if cout != self.out_channels or cin != self.in_channels:
            weight = weight[:cout, :cin]
        if scale is not None:
            weight = weight * scale.view(1, -1, 1, 1)
        bias = None if self.bias is None else self.bias[:cout]
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, 1)


class SlimBatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d over the channels that arrive; the gate (if any) folded into the affine."""

    gate: MarkovGate | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        full = c == self.num_features
        weight, bias = self.weight, self.bias
        rm, rv = self.running_mean, self.running_var
        if not full:
            weight, bias = weight[:c], bias[:c]
            if rm is not None:
                rm, rv = rm[:c], rv[:c]  # views: the running statistics update in place
        if self.gate is not None and self.gate.scaling:
            s = self.gate.scale(c, weight.dtype)
            weight, bias = weight * s, bias * s
        # momentum bookkeeping exactly as nn.BatchNorm2d (momentum None: cumulative average)
        eaf = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            eaf = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        use_batch = self.training or rm is None
        return F.batch_norm(x, rm if not self.training or self.track_running_stats else None,
                            rv if not self.training or self.track_running_stats else None,
                            weight, bias, use_batch, eaf, self.eps)


class SlimLinear(nn.Linear):
    """nn.Linear reading however many input features arrive (the classifier after pruning)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cin = x.shape[-1]
        weight = self.weight if cin == self.in_features else self.weight[:, :cin]
        return F.linear(x, weight, self.bias)


_SLIM = {nn.Conv2d: SlimConv2d, nn.BatchNorm2d: SlimBatchNorm2d, nn.Linear: SlimLinear}


def slim_(module: nn.Module) -> nn.Module:
    """Turn a plain conv / BN / linear module into its slimmable subclass in place (parameters,
    buffers and hooks kept). Subclasses of those layers are refused: their own forward would be lost."""
    if type(module) in _SLIM.values():
        return module
    cls = _SLIM.get(type(module))
    if cls is None:
        raise TypeError(f"cannot make {type(module).__name__} slimmable: only plain nn.Conv2d, "
                        f"nn.BatchNorm2d and nn.Linear are supported")
    if isinstance(module, nn.Conv2d) and module.padding_mode != "zeros":
        raise ValueError(f"conv with padding_mode={module.padding_mode!r} is not supported")
    if isinstance(module, nn.BatchNorm2d) and not module.affine:
        raise ValueError("BatchNorm2d without affine parameters is not supported (the gate folds into them)")
    module.__class__ = cls
    return module
