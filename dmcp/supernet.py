"""The DMCP supernet: a torchvision ResNet / MobileNetV2 with one Markov gate per prunable width.

`make_prunable(net)` walks a torchvision-style network, creates one `MarkovGate` per independent
width and records, for every conv / linear layer, which gates set its input and output widths.
Layers tied by a residual connection share one gate (Sec. 3.2; official code): a ResNet stage's
residual stream (the downsample conv and every block's last conv), and in MobileNetV2 the outputs
of the blocks of one stage; a MobileNetV2 block's expansion and depthwise conv share the
expansion gate. Where the gate sits (official code, Fig. 2b):

* ResNet: BN -> gate -> ReLU for every conv (stem, conv1..3, downsample);
* MobileNetV2: stem, projection and last 1x1 conv after BN; expansion and depthwise outputs after
  ReLU6 (the first block, without expansion, gates its depthwise output with the stem gate),
  folded into the weights of the conv that reads them.

ResNet-50 gets 37 gates and 333 alphas, MobileNetV2-1.5x 25 gates and 350 alphas.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from dmcp.export import apply_widths, build_base
from dmcp.flops import LayerSpec, layer_widths, network_madds, network_params
from dmcp.markov import MarkovGate, group_spec
from dmcp.slim import attach, slim_

__all__ = ["DMCPSupernet", "make_prunable", "build_supernet", "MODELS", "TOY_MBV2_SETTING"]

log = logging.getLogger("dmcp")

# MobileNetV2 for 32x32 inputs (the CIFAR adaptation: strides 1 in the stem and second stage)
TOY_MBV2_SETTING = [[1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                    [6, 160, 3, 2], [6, 320, 1, 1]]
MODELS = {
    "resnet18": {"family": "resnet", "block": "BasicBlock", "layers": [2, 2, 2, 2]},
    "resnet50": {"family": "resnet", "block": "Bottleneck", "layers": [3, 4, 6, 3]},
    "mobilenet_v2": {"family": "mobilenet_v2", "setting": None},
    "toy_resnet": {"family": "resnet", "block": "BasicBlock", "layers": [1, 1, 1, 1], "small_input": True,
                   "stem_stride": 2},
    "toy_mobilenet_v2": {"family": "mobilenet_v2", "setting": TOY_MBV2_SETTING, "small_input": True,
                         "stem_stride": 2},
}
TORCHVISION_WEIGHTS = {"resnet18": "ResNet18_Weights", "resnet50": "ResNet50_Weights",
                       "mobilenet_v2": "MobileNet_V2_Weights"}


class _Plan:
    """Gates and layers collected while walking a network."""

    def __init__(self, net: nn.Module):
        self.net = net
        self.gate_names: list[str] = []
        self.gate_channels: list[int] = []
        self.layers: list[dict] = []
        self.bn_gates: list[tuple[str, int]] = []
        self.in_scales: list[tuple[str, int]] = []  # (conv, gate applied to its input channels)

    def gate(self, name: str, channels: int) -> int:
        self.gate_names.append(name)
        self.gate_channels.append(int(channels))
        return len(self.gate_names) - 1

    def conv(self, name: str, in_gate, out_gate, bn: str | None, gate_bn: bool = True) -> None:
        m = self.net.get_submodule(name)
        if type(m) is not nn.Conv2d:
            raise TypeError(f"{name}: expected nn.Conv2d, found {type(m).__name__}")
        depthwise = m.groups > 1 and m.groups == m.in_channels == m.out_channels
        if m.groups != 1 and not depthwise:
            raise ValueError(f"{name}: grouped convolutions (groups={m.groups}) are not supported")
        if depthwise and in_gate != out_gate:
            raise ValueError(f"{name}: a depthwise conv must keep its input width")
        self.layers.append({"name": name, "kind": "conv", "in_gate": in_gate, "out_gate": out_gate,
                            "in_channels": m.in_channels, "out_channels": m.out_channels,
                            "kernel": int(m.kernel_size[0] * m.kernel_size[1]), "depthwise": depthwise,
                            "bias": m.bias is not None, "bn": bn})
        if bn is not None and gate_bn and out_gate is not None:
            self.bn_gates.append((bn, out_gate))

    def linear(self, name: str, in_gate) -> None:
        m = self.net.get_submodule(name)
        if type(m) is not nn.Linear:
            raise TypeError(f"{name}: expected nn.Linear, found {type(m).__name__}")
        self.layers.append({"name": name, "kind": "linear", "in_gate": in_gate, "out_gate": None,
                            "in_channels": m.in_features, "out_channels": m.out_features, "kernel": 1,
                            "depthwise": False, "bias": m.bias is not None, "bn": None})


def _plan_resnet(net: nn.Module) -> _Plan:
    p = _Plan(net)
    stem = p.gate("stem", net.conv1.out_channels)
    p.conv("conv1", None, stem, "bn1")
    cur = stem
    for li in range(1, 5):
        for bi, block in enumerate(getattr(net, f"layer{li}")):
            pre = f"layer{li}.{bi}"
            out = cur
            if block.downsample is not None:
                out = p.gate(f"layer{li}", block.downsample[0].out_channels)
                p.conv(f"{pre}.downsample.0", cur, out, f"{pre}.downsample.1")
            if hasattr(block, "conv3"):  # Bottleneck
                g1 = p.gate(f"{pre}.conv1", block.conv1.out_channels)
                g2 = p.gate(f"{pre}.conv2", block.conv2.out_channels)
                p.conv(f"{pre}.conv1", cur, g1, f"{pre}.bn1")
                p.conv(f"{pre}.conv2", g1, g2, f"{pre}.bn2")
                p.conv(f"{pre}.conv3", g2, out, f"{pre}.bn3")
            else:  # BasicBlock
                g1 = p.gate(f"{pre}.conv1", block.conv1.out_channels)
                p.conv(f"{pre}.conv1", cur, g1, f"{pre}.bn1")
                p.conv(f"{pre}.conv2", g1, out, f"{pre}.bn2")
            cur = out
    p.linear("fc", cur)
    return p


def _plan_mobilenet_v2(net: nn.Module) -> _Plan:
    p = _Plan(net)
    feats = net.features
    stem = p.gate("stem", feats[0][0].out_channels)
    p.conv("features.0.0", None, stem, "features.0.1")
    cur = stem
    for i in range(1, len(feats) - 1):
        block = feats[i]
        if not hasattr(block, "use_res_connect"):
            raise TypeError(f"features.{i}: expected an InvertedResidual block, found {type(block).__name__}")
        seq, pre = block.conv, f"features.{i}.conv"
        if len(seq) == 4:  # expansion 1x1, depthwise 3x3, projection 1x1, BN
            exp = p.gate(f"features.{i}.expand", seq[0][0].out_channels)
            p.conv(f"{pre}.0.0", cur, exp, f"{pre}.0.1", gate_bn=False)
            p.in_scales.append((f"{pre}.1.0", exp))  # after ReLU6: folded into the depthwise conv
            mid, proj = exp, 2
        elif len(seq) == 3:  # expansion ratio 1: depthwise, projection, BN
            mid, proj = cur, 1
        else:
            raise TypeError(f"{pre}: unexpected InvertedResidual layout ({len(seq)} modules)")
        p.conv(f"{pre}.{proj - 1}.0", mid, mid, f"{pre}.{proj - 1}.1", gate_bn=False)
        p.in_scales.append((f"{pre}.{proj}", mid))  # after ReLU6: folded into the projection conv
        out = cur if block.use_res_connect else p.gate(f"features.{i}", seq[proj].out_channels)
        p.conv(f"{pre}.{proj}", mid, out, f"{pre}.{proj + 1}")
        cur = out
    n = len(feats) - 1
    last = p.gate("last", feats[n][0].out_channels)
    p.conv(f"features.{n}.0", cur, last, f"features.{n}.1")
    fcs = [i for i, m in enumerate(net.classifier) if isinstance(m, nn.Linear)]
    if len(fcs) != 1:
        raise TypeError("classifier: expected exactly one nn.Linear")
    p.linear(f"classifier.{fcs[0]}", last)
    return p


def _family(net: nn.Module) -> str:
    if all(hasattr(net, a) for a in ("conv1", "bn1", "layer1", "layer4", "fc")):
        return "resnet"
    if hasattr(net, "features") and hasattr(net, "classifier") and \
            any(hasattr(m, "use_res_connect") for m in net.features):
        return "mobilenet_v2"
    raise TypeError(f"{type(net).__name__}: not a torchvision-style ResNet or MobileNetV2")


@torch.no_grad()
def _output_positions(net: nn.Module, names: Sequence[str], input_size: int) -> dict[str, int]:
    """H_out * W_out of each named layer for one input of input_size x input_size."""
    hw, handles = {}, []
    for name in names:
        def hook(m, inp, out, name=name):
            hw[name] = int(out.shape[-2] * out.shape[-1]) if out.dim() == 4 else 1
        handles.append(net.get_submodule(name).register_forward_hook(hook))
    modes = [(m, m.training) for m in net.modules()]
    try:
        net.eval()
        p = next(net.parameters())
        net(torch.zeros(1, 3, input_size, input_size, device=p.device, dtype=p.dtype))
    finally:
        for h in handles:
            h.remove()
        for m, t in modes:
            m.training = t
    return hw


class DMCPSupernet(nn.Module):
    """A prunable network: `net` (the torchvision model, slimmable layers) and its gates.

    Width control for the weight passes: `set_max()`, `set_min()`, `set_states(ks)` (ks[g] groups
    kept by gate g), `set_channels(cs)`; `set_scaling(True)` switches on the architecture pass
    (max width, every channel scaled by its marginal probability). `expected_flops()` is Eq. 7.
    """

    def __init__(self, net: nn.Module, gates: Sequence[MarkovGate], layers: Sequence[LayerSpec],
                 builder: dict | None, input_size: int, width: dict):
        super().__init__()
        self.net = net
        self.gates = nn.ModuleList(gates)
        self.layers = tuple(layers)
        self.builder = builder
        self.input_size = int(input_size)
        self.width = dict(width)

    # --- forward ------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scaling = [g for g in self.gates if g.scaling]
        for g in scaling:  # one scale vector per gate and forward, shared by its layers
            g._scale = g.channel_scale()
        try:
            return self.net(x)
        finally:
            for g in scaling:
                g._scale = None

    # --- parameters -----------------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        return [g.alpha for g in self.gates if g.alpha.numel() > 0]

    def weight_parameters(self) -> list[nn.Parameter]:
        return list(self.net.parameters())

    def num_alphas(self) -> int:
        return sum(g.alpha.numel() for g in self.gates)

    # --- width control --------------------------------------------------------------------------
    def set_scaling(self, on: bool) -> None:
        for g in self.gates:
            g.scaling = bool(on)

    def set_max(self) -> None:
        for g in self.gates:
            g.active = None

    def set_min(self) -> None:
        self.set_states([0] * len(self.gates))

    def set_states(self, states: Sequence[int]) -> None:
        if len(states) != len(self.gates):
            raise ValueError(f"{len(states)} states for {len(self.gates)} gates")
        for g, k in zip(self.gates, states):
            g.set_state(int(k))

    def set_channels(self, channels: Sequence[int]) -> None:
        """Arbitrary widths (not necessarily on the grid), e.g. for a uniformly narrower net."""
        if len(channels) != len(self.gates):
            raise ValueError(f"{len(channels)} widths for {len(self.gates)} gates")
        for g, c in zip(self.gates, channels):
            if not 1 <= int(c) <= g.spec.channels:
                raise ValueError(f"gate {g.name}: {c} channels outside 1..{g.spec.channels}")
            g.active = int(c)

    # --- architectures --------------------------------------------------------------------------
    def n_states(self) -> list[int]:
        return [g.spec.n_groups for g in self.gates]

    def channels_of(self, states) -> torch.Tensor:
        """Widths [.., G] (int64) of states [.., G]."""
        s = torch.as_tensor(states, dtype=torch.int64)
        mins = torch.tensor([g.spec.min_ch for g in self.gates], dtype=torch.int64)
        sizes = torch.tensor([g.spec.group for g in self.gates], dtype=torch.int64)
        return mins + sizes * s

    def full_channels(self) -> list[int]:
        return [g.spec.channels for g in self.gates]

    def sample_uniform(self, generator: torch.Generator | None = None) -> list[int]:
        """Each gate's state uniformly from 0..n (the official 'non-uniform random width')."""
        return [int(torch.randint(0, g.spec.n_groups + 1, (1,), generator=generator)) for g in self.gates]

    def sample_markov(self, generator: torch.Generator | None = None, n_samples: int = 1) -> torch.Tensor:
        """[n_samples, G] states drawn from the chains (direct sampling)."""
        return torch.stack([g.sample(n_samples, generator) for g in self.gates], dim=1)

    def expected_channels(self) -> torch.Tensor:
        return torch.stack([g.expected_channels() for g in self.gates])

    def expected_flops(self) -> torch.Tensor:
        """E[FLOPs] in multiply-adds (Eq. 7), differentiable in every alpha (float64 scalar)."""
        return network_madds(self.layers, self.expected_channels().double(), expected=True)

    def madds(self, channels) -> torch.Tensor:
        """Exact multiply-adds of concrete widths [G] or [S, G]."""
        return network_madds(self.layers, channels)

    def params(self, channels) -> torch.Tensor:
        return network_params(self.layers, channels)

    def layer_widths(self, channels: Sequence[int]) -> list[dict]:
        return layer_widths(self.layers, [int(c) for c in channels])


def make_prunable(net: nn.Module, input_size: int = 224, min_width: float = 0.1, max_width: float = 1.0,
                  width_step: float = 0.1, multiple: int = 1, builder: dict | None = None) -> DMCPSupernet:
    """Make a torchvision-style ResNet (BasicBlock / Bottleneck) or MobileNetV2 prunable, in place.

    Its plain conv / BN / linear layers become slimmable (same parameters and state-dict keys
    under `.net`), gates are created with `group_spec(C, min_width, max_width, width_step,
    multiple)` and attached, and each layer's output size at `input_size` is recorded for the
    FLOPs. `max_width` is the supernet's width relative to the pruning range (1.5 for the 1.5x
    MobileNetV2 of the paper: states from 0.1 to 1.5 of the 1.0x widths).
    """
    family = _family(net)
    plan = _plan_resnet(net) if family == "resnet" else _plan_mobilenet_v2(net)
    gates = [MarkovGate(group_spec(c, min_width, max_width, width_step, multiple), name)
             for name, c in zip(plan.gate_names, plan.gate_channels)]
    hw = _output_positions(net, [layer["name"] for layer in plan.layers], input_size)
    layers = [LayerSpec(hw=hw[layer["name"]] if layer["kind"] == "conv" else 1, **layer) for layer in plan.layers]
    for layer in layers:
        m = slim_(net.get_submodule(layer.name))
        if layer.kind == "conv":
            attach(m, "out_gate", gates[layer.out_gate] if layer.out_gate is not None else None)
            m.depthwise = layer.depthwise
        if layer.bn:
            slim_(net.get_submodule(layer.bn))
    for bn, g in plan.bn_gates:
        attach(net.get_submodule(bn), "gate", gates[g])
    for conv, g in plan.in_scales:  # gate after ReLU6 == gate on the next conv's input channels
        attach(net.get_submodule(conv), "in_gate", gates[g])
    width = {"min_width": min_width, "max_width": max_width, "width_step": width_step, "multiple": multiple}
    return DMCPSupernet(net, gates, layers, builder, input_size, width)


def _load_pretrained(net: nn.Module, model: str, pretrained: str) -> None:
    """torchvision weights by name (`DEFAULT`, `IMAGENET1K_V1`, ...; downloaded by torchvision on
    first use) or a local state-dict file. A classifier of another size is left initialised."""
    if Path(pretrained).is_file():
        from shared.checkpoint import load_checkpoint

        state = load_checkpoint(pretrained)
        state = state.get("model", state) if isinstance(state, dict) else state
    else:
        if model not in TORCHVISION_WEIGHTS:
            raise ValueError(f"--pretrained {pretrained}: torchvision has no weights for {model} "
                             f"(and no such file)")
        from torchvision.models import get_weight

        state = get_weight(f"{TORCHVISION_WEIGHTS[model]}.{pretrained}").get_state_dict(progress=True)
    own = net.state_dict()
    head = ("fc.", "classifier.")
    missing = [k for k in own if k not in state and not k.startswith(head)]
    bad = [k for k, v in own.items() if k in state and state[k].shape != v.shape]
    if missing or any(not k.startswith(head) for k in bad):
        raise ValueError(f"--pretrained {pretrained}: not weights of this network: {len(missing)} tensors missing "
                         f"(e.g. {missing[:3]}), shapes differ for {[k for k in bad if not k.startswith(head)][:3]}")
    state = {k: v for k, v in state.items() if k in own and k not in bad}
    net.load_state_dict(state, strict=False)
    log.info("loaded pretrained weights %s (%d tensors; classifier %s)", pretrained, len(state),
             "re-initialised" if bad else "loaded")


def build_supernet(model: str = "resnet50", num_classes: int = 1000, input_size: int = 224,
                   min_width: float = 0.1, max_width: float = 1.0, width_step: float = 0.1,
                   multiple: int = 1, pretrained: str = "", dropout: float | None = None,
                   toy_width: float = 0.25) -> DMCPSupernet:
    """The paper's supernets: ResNet-18/50 (width range 0.1-1.0), MobileNetV2 at `max_width`
    (1.0 or 1.5; range 0.1-max), and the small-resolution toy variants (`toy_resnet`: a
    ResNet-10-style BasicBlock net for 32x32 inputs with widths x `toy_width`; `toy_mobilenet_v2`)."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose from {sorted(MODELS)}")
    builder = dict(MODELS[model], num_classes=int(num_classes), small_input=MODELS[model].get("small_input", False))
    if builder["family"] == "mobilenet_v2":
        builder["width_mult"] = float(max_width)
        if model == "toy_mobilenet_v2":
            builder["width_mult"] = float(max_width) * toy_width
        builder["dropout"] = 0.2 if dropout is None else float(dropout)
    elif max_width != 1.0:
        raise ValueError("ResNet supernets are the 1.0x networks: use --max-width 1.0")
    net = build_base(builder)
    if model == "toy_resnet" and toy_width != 1.0:
        net = _narrow(net, input_size, toy_width)
    if pretrained:
        if builder["family"] == "mobilenet_v2" and builder["width_mult"] != 1.0:
            raise ValueError("torchvision's MobileNetV2 weights are for width 1.0 only")
        _load_pretrained(net, model, pretrained)
    return make_prunable(net, input_size, min_width, max_width, width_step, multiple, builder=builder)


def _narrow(net: nn.Module, input_size: int, factor: float) -> nn.Module:
    """`net` with every prunable width multiplied by `factor` (rounded, at least 8): the layer
    table of a throw-away supernet tells which layers each width drives."""
    import copy

    tmp = make_prunable(copy.deepcopy(net), input_size)
    channels = [max(8, int(round(c * factor))) for c in tmp.full_channels()]
    return apply_widths(net, tmp.layer_widths(channels), copy_weights=False)
