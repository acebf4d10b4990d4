"""The supernet of the Topology Augmented Search Space and the stand-alone child networks.

`Supernet.forward(x, arch)` runs one architecture of the space on the shared weights: every edge
(i, j) of every stage holds one MBConv module per op, and the architecture picks which edges exist
and which op each one runs (SPOS's single path, generalised to a DAG). `build_child(supernet,
arch)` returns a plain `ChildNet` holding exactly those modules and inheriting their weights and
BN statistics; `ChildNet(skeleton, arch)` alone is the same network freshly initialised (for
retraining from scratch). Both run the same `dag_forward`, so their outputs agree.
"""
from __future__ import annotations

import torch
from torch import nn

from st_nas.space import Skeleton, block_edges, parse_op

__all__ = ["MBConv", "dag_forward", "Supernet", "ChildNet", "build_child", "child_state_dict"]


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    """MobileNetV2's inverted residual with a k x k depthwise conv: 1x1 expand (skipped when the
    expansion is 1), k x k depthwise with the stride, linear 1x1 projection; the identity shortcut
    is added when the stride is 1 and the width does not change (every edge not leaving node 0)."""

    def __init__(self, cin: int, cout: int, kernel: int, expansion: int, stride: int = 1):
        super().__init__()
        hidden = cin * expansion
        layers = [] if expansion == 1 else [_conv_bn(cin, hidden, 1)]
        layers += [_conv_bn(hidden, hidden, kernel, stride, groups=hidden), _conv_bn(hidden, cout, 1, act=False)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return x + y if self.residual else y


def dag_forward(x: torch.Tensor, num_nodes: int, edges) -> torch.Tensor:
    """node_0 = x; node_j = sum_i op_ij(node_i); returns node_{N-1}. `edges` are (i, j, module)
    sorted by (j, i), so every source node is complete before it is read."""
    nodes: list = [x] + [None] * (num_nodes - 1)
    for i, j, module in edges:
        y = module(nodes[i])
        nodes[j] = y if nodes[j] is None else nodes[j] + y
    return nodes[-1]


class _Skeleton(nn.Module):
    """Stem, the fixed t=1 bottleneck and the head shared by the supernet and its children."""

    def __init__(self, sk: Skeleton, dropout: float = 0.0):
        super().__init__()
        self.skeleton = sk
        self.stem = _conv_bn(3, sk.stem_width, 3, sk.stem_stride)
        self.first = MBConv(sk.stem_width, sk.first_width, 3, 1)
        self.head = _conv_bn(sk.widths[-1], sk.last_width, 1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(sk.last_width, sk.num_classes)

    def _edge_module(self, s: int, i: int, op: str) -> MBConv:
        cin, cout = self.skeleton.stage_channels(s)
        k, e = parse_op(op)
        return MBConv(cin, cout, k, e, self.skeleton.strides[s]) if i == 0 else MBConv(cout, cout, k, e, 1)

    def _init_weights(self, zero_init_residual: bool) -> None:
        """MobileNetV2's initialisation (torchvision); with `zero_init_residual` the last BN scale
        of every residual op starts at zero (Goyal et al. 2017; timm's MBConv blocks), so each
        residual edge starts as the identity. In a supernet this keeps the randomly drawn ops from
        swamping the input signal at the start of training (the loss sits at chance for hundreds
        of steps otherwise, on the toy data)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, MBConv) and m.residual:
                    nn.init.zeros_(m.conv[-1][1].weight)

    def _classify(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(self.dropout(x))


class Supernet(_Skeleton):
    """All architectures of the space on shared weights: `stages[s].edges["i_j"][op]`."""

    def __init__(self, sk: Skeleton, zero_init_residual: bool = True):
        super().__init__(sk, dropout=0.0)  # SPOS trains the supernet without dropout
        self.op_index = {op: k for k, op in enumerate(sk.ops)}
        self.stages = nn.ModuleList()
        for s, n in enumerate(sk.nodes):
            stage = nn.Module()
            stage.edges = nn.ModuleDict({f"{i}_{j}": nn.ModuleList(self._edge_module(s, i, op) for op in sk.ops)
                                         for i, j in block_edges(n)})
            self.stages.append(stage)
        self._init_weights(zero_init_residual)

    def path(self, s: int, block) -> list:
        edges = self.stages[s].edges
        return [(i, j, edges[f"{i}_{j}"][self.op_index[op]]) for i, j, op in block]

    def forward(self, x: torch.Tensor, arch) -> torch.Tensor:
        x = self.first(self.stem(x))
        for s, block in enumerate(arch):
            x = dag_forward(x, self.skeleton.nodes[s], self.path(s, block))
        return self._classify(x)


class ChildNet(_Skeleton):
    """One architecture as a plain network: `stages[s].edges["i_j"]` is the op of that edge."""

    def __init__(self, sk: Skeleton, arch, dropout: float = 0.0, zero_init_residual: bool = True):
        super().__init__(sk, dropout)
        self.arch = tuple(tuple(tuple(e) for e in block) for block in arch)
        self.stages = nn.ModuleList()
        for s, block in enumerate(self.arch):
            stage = nn.Module()
            stage.edges = nn.ModuleDict({f"{i}_{j}": self._edge_module(s, i, op) for i, j, op in block})
            self.stages.append(stage)
        self._init_weights(zero_init_residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(self.stem(x))
        for s, block in enumerate(self.arch):
            edges = self.stages[s].edges
            x = dag_forward(x, self.skeleton.nodes[s], [(i, j, edges[f"{i}_{j}"]) for i, j, _ in block])
        return self._classify(x)


def child_state_dict(supernet_state: dict, skeleton: Skeleton, arch) -> dict:
    """The state dict of `ChildNet(skeleton, arch)` cut out of a supernet state dict (weights and
    BN statistics of the chosen op on each present edge; stem, t=1 block and head as they are)."""
    index = {op: k for k, op in enumerate(skeleton.ops)}
    out = {k: v for k, v in supernet_state.items() if not k.startswith("stages.")}
    for s, block in enumerate(arch):
        for i, j, op in block:
            src = f"stages.{s}.edges.{i}_{j}.{index[op]}."
            dst = f"stages.{s}.edges.{i}_{j}."
            out.update({dst + k[len(src):]: v for k, v in supernet_state.items() if k.startswith(src)})
    return out


def build_child(supernet: Supernet, arch, dropout: float = 0.0) -> ChildNet:
    """A plain network for `arch` that inherits the supernet's weights and BN statistics."""
    child = ChildNet(supernet.skeleton, arch, dropout)
    child.load_state_dict(child_state_dict(supernet.state_dict(), supernet.skeleton, child.arch))
    p = next(supernet.parameters())
    return child.to(device=p.device)
