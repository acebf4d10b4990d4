"""Plain pruned networks: torchvision's own classes with narrower nn layers, no gates.

This module imports only torch and torchvision, so a pruned network can be rebuilt anywhere from
its `arch.json` (`build_pruned(arch)`) and its state dict; `save_program` additionally writes a
`torch.export` program that loads with plain `torch.export.load` (no Python model code at all).

An architecture is a list of layers (`arch["layers"]`): `{"name", "kind": "conv"|"linear", "in",
"out", "depthwise", "bias", "bn"}`; `arch["builder"]` names the torchvision topology:
`{"family": "resnet", "block": "BasicBlock"|"Bottleneck", "layers": [..], "num_classes", "small_input"}`
or `{"family": "mobilenet_v2", "width_mult", "setting", "dropout", "num_classes", "small_input"}`.
`small_input` adapts the stem to 32x32 images (ResNet: a 3x3 conv of stride `stem_stride`
(default 1), no max-pool; MobileNetV2: a stem of stride `stem_stride`).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["build_base", "apply_widths", "build_pruned", "save_program"]


def build_base(builder: dict) -> nn.Module:
    """The full-width torchvision network named by `builder` (random initialisation)."""
    from torchvision.models.mobilenetv2 import MobileNetV2
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

    family = builder.get("family")
    if family == "resnet":
        block = {"BasicBlock": BasicBlock, "Bottleneck": Bottleneck}[builder["block"]]
        net = ResNet(block, list(builder["layers"]), num_classes=int(builder["num_classes"]))
        if builder.get("small_input"):
            net.conv1 = nn.Conv2d(3, net.conv1.out_channels, 3, int(builder.get("stem_stride", 1)), 1, bias=False)
            net.maxpool = nn.Identity()
    elif family == "mobilenet_v2":
        kw = {}
        if builder.get("setting"):
            kw["inverted_residual_setting"] = [list(r) for r in builder["setting"]]
        net = MobileNetV2(num_classes=int(builder["num_classes"]), width_mult=float(builder.get("width_mult", 1.0)),
                          dropout=float(builder.get("dropout", 0.2)), **kw)
        if builder.get("small_input"):
            stride = int(builder.get("stem_stride", 1))
            net.features[0][0].stride = (stride, stride)
    else:
        raise ValueError(f"unknown network family {family!r} in builder {builder}")
    return net


def _new_conv(old: nn.Conv2d, cin: int, cout: int, depthwise: bool) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, old.kernel_size, old.stride, old.padding, old.dilation,
                     groups=cout if depthwise else 1, bias=old.bias is not None)


@torch.no_grad()
def apply_widths(net: nn.Module, layers: Sequence[dict], copy_weights: bool = True) -> nn.Module:
    """Replace every listed conv / linear (and the BN after it) by a plain layer of the given
    widths, in place. `copy_weights` keeps the first channels of the old weights (and BN
    statistics); otherwise the new layers keep PyTorch's default initialisation."""
    for spec in layers:
        old = net.get_submodule(spec["name"])
        cin, cout = int(spec["in"]), int(spec["out"])
        if spec["kind"] == "linear":
            new = nn.Linear(cin, cout, bias=old.bias is not None)
            if copy_weights:
                new.weight.copy_(old.weight[:cout, :cin])
        else:
            new = _new_conv(old, cin, cout, bool(spec["depthwise"]))
            if copy_weights:
                new.weight.copy_(old.weight[:cout, :new.weight.shape[1]])
        if copy_weights and new.bias is not None:
            new.bias.copy_(old.bias[:cout])
        new.to(old.weight.device, old.weight.dtype)
        net.set_submodule(spec["name"], new)
        if spec.get("bn"):
            ob = net.get_submodule(spec["bn"])
            nb = nn.BatchNorm2d(cout, eps=ob.eps, momentum=ob.momentum).to(ob.weight.device, ob.weight.dtype)
            if copy_weights:
                for name in ("weight", "bias"):
                    getattr(nb, name).copy_(getattr(ob, name)[:cout])
                for name in ("running_mean", "running_var"):
                    getattr(nb, name).copy_(getattr(ob, name)[:cout])
                nb.num_batches_tracked.copy_(ob.num_batches_tracked)
            net.set_submodule(spec["bn"], nb)
    return net


def build_pruned(arch: dict) -> nn.Module:
    """The pruned network of an `arch.json` dict (fresh initialisation): load its state dict to
    get the trained weights."""
    if "builder" not in arch or not arch.get("builder"):
        raise ValueError("this arch.json has no 'builder' (the network was not built by dmcp's "
                         "builders): call apply_widths(your_full_network, arch['layers']) instead")
    net = build_base(arch["builder"])
    return apply_widths(net, arch["layers"], copy_weights=False)


def save_program(model: nn.Module, path, input_size: int) -> None:
    """Write `model` (eval mode) as a torch.export program with a dynamic batch dimension;
    `torch.export.load(path).module()` runs it without any of this repository's code."""
    model = model.eval()
    device = next(model.parameters()).device
    x = torch.zeros(2, 3, input_size, input_size, device=device)
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
