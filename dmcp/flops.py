"""FLOPs of a prunable network as a function of its widths (DMCP, Sec. 3.3, Eq. 6-7).

The convention is `shared.metrics.flops.count_madds`: multiply-adds of conv and linear layers
(one multiply-add = one FLOP), nothing else - no BN, activation, pooling, addition or bias. For a
layer with input width c_in, output width c_out, kernel k_h x k_w and H_out x W_out positions:

    conv:      k_h * k_w * c_in / groups * c_out * H_out * W_out
    depthwise: k_h * k_w * c_out * H_out * W_out            (groups = c_in)
    linear:    c_in * c_out

The widths come from the Markov gates: concrete channel counts give the exact MAdds of the pruned
network (tested equal to count_madds of the exported model); expected channels E[C] give the
expected FLOPs, differentiable in alpha (Eq. 7). Inputs and outputs of one layer are driven by
different chains, so E[c_in * c_out] = E[c_in] * E[c_out]. A depthwise layer's group count is
E[c_in] detached, as in the official `conv_compute_flops`: its value is linear in the width.
Everything is evaluated in float64 (ResNet-50's 4.09e9 is exact) and vectorised over samples,
so checking thousands of sampled architectures against a budget takes milliseconds.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

__all__ = ["LayerSpec", "network_madds", "network_params", "layer_widths"]


@dataclass(frozen=True)
class LayerSpec:
    """One conv / linear layer of the prunable network and the gates that set its widths."""

    name: str               # qualified module name inside the torchvision network
    kind: str               # "conv" or "linear"
    in_gate: int | None     # index of the gate setting its input width (None: fixed)
    out_gate: int | None    # index of the gate setting its output width (None: fixed)
    in_channels: int        # full (unpruned) widths
    out_channels: int
    kernel: int             # k_h * k_w (1 for linear)
    depthwise: bool
    hw: int                 # H_out * W_out at the supernet's input size (1 for linear)
    bias: bool
    bn: str | None          # the BatchNorm2d normalising its output, if any

    def to_dict(self) -> dict:
        return asdict(self)


def _width(channels: torch.Tensor, gate: int | None, full: int) -> torch.Tensor | float:
    return channels[..., gate] if gate is not None else float(full)


def network_madds(layers: Sequence[LayerSpec], channels, expected: bool = False) -> torch.Tensor:
    """Multiply-adds for per-gate widths `channels` ([G] or [S, G]; float or int).

    `expected=True` marks `channels` as expected widths (differentiable): the depthwise group
    count is then the detached input width (official formula). Returns a float64 tensor [] or [S].
    """
    c = torch.as_tensor(channels)
    c = c.double() if not c.is_floating_point() else c.to(torch.float64)
    total = torch.zeros(c.shape[:-1], dtype=torch.float64, device=c.device)
    for layer in layers:
        cin = _width(c, layer.in_gate, layer.in_channels)
        cout = _width(c, layer.out_gate, layer.out_channels)
        if layer.depthwise:
            if expected and torch.is_tensor(cin):
                total = total + layer.kernel * layer.hw * cin / cin.detach() * cout
            else:
                total = total + layer.kernel * layer.hw * cout
        else:
            total = total + layer.kernel * layer.hw * cin * cout
    return total


def network_params(layers: Sequence[LayerSpec], channels) -> torch.Tensor:
    """Parameters of the pruned network (conv/linear weights and biases, BN weight and bias):
    equal to `count_params` of the exported model."""
    c = torch.as_tensor(channels).double()
    total = torch.zeros(c.shape[:-1], dtype=torch.float64)
    for layer in layers:
        cin = _width(c, layer.in_gate, layer.in_channels)
        cout = _width(c, layer.out_gate, layer.out_channels)
        if layer.depthwise:
            total = total + layer.kernel * cout
        else:
            total = total + layer.kernel * cin * cout
        if layer.bias:
            total = total + cout
        if layer.bn:
            total = total + 2 * cout
    return total


def layer_widths(layers: Sequence[LayerSpec], channels: Sequence[int]) -> list[dict]:
    """Per-layer description of a concrete architecture (what arch.json stores and what
    `export.apply_widths` needs): name, kind, in / out widths, depthwise, bias, BN name."""
    out = []
    for layer in layers:
        cin = int(channels[layer.in_gate]) if layer.in_gate is not None else layer.in_channels
        cout = int(channels[layer.out_gate]) if layer.out_gate is not None else layer.out_channels
        out.append({"name": layer.name, "kind": layer.kind, "in": cin, "out": cout,
                    "depthwise": layer.depthwise, "bias": layer.bias, "bn": layer.bn})
    return out
