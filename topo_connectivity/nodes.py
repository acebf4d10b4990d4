"""Node transformations T_j of the stage DAGs (the paper: "nodes aggregate and transform features").

A node's input is a weighted sum of earlier outputs, so every node here begins with a
normalisation or a convolution followed by BN: the node is invariant to a common positive scale of
its in-weights (the reason pruning thresholds normalised strengths, see pruning.py).

- `PreActBottleneck` (ResNet-50) and `PreActBasic` (ResNet-18): the pre-activation residual
  functions of He et al. 2016 ("Identity mappings"), BN-ReLU-conv. The post-activation block
  relu(x + F(x)) is not a sum over earlier outputs, hence pre-activation. As the transition
  (node 0, `shortcut=True`) a block returns shortcut + F(x), the shortcut being the identity or a
  1x1 projection of the pre-activated input; as an inner node it returns F(x). The stride sits on
  the 3x3 convolution (torchvision's ResNet v1.5), so the MAdds equal torchvision's resnet18/50.
- `SepConvNode` (TopoNet-small, RandWire): ReLU - 3x3 depthwise conv - 1x1 conv - BN.
MobileNetV2 nodes are torchvision's `InvertedResidual` (its `.conv` branch for inner nodes).
"""
from __future__ import annotations

from torch import nn

__all__ = ["PreActBottleneck", "PreActBasic", "SepConvNode", "init_resnet"]


class _PreAct(nn.Module):
    """shortcut(x) + F(x) for the transition, F(x) for an inner node; F starts with BN-ReLU."""

    def __init__(self, inplanes: int, out: int, stride: int, shortcut: bool):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.relu = nn.ReLU(inplace=True)  # on BN outputs only, never on a node input
        self.has_shortcut = bool(shortcut)
        self.downsample = None
        if shortcut and (stride != 1 or inplanes != out):
            self.downsample = nn.Conv2d(inplanes, out, 1, stride, bias=False)

    def residual(self, a):
        raise NotImplementedError

    def forward(self, x):
        a = self.relu(self.bn1(x))
        f = self.residual(a)
        if not self.has_shortcut:
            return f
        return (self.downsample(a) if self.downsample is not None else x) + f


class PreActBottleneck(_PreAct):
    """BN-ReLU-conv1x1 - BN-ReLU-conv3x3(stride) - BN-ReLU-conv1x1 (expansion 4)."""
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, shortcut: bool = False):
        super().__init__(inplanes, planes * 4, stride, shortcut)
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)

    def residual(self, a):
        out = self.conv1(a)
        out = self.conv2(self.relu(self.bn2(out)))
        return self.conv3(self.relu(self.bn3(out)))


class PreActBasic(_PreAct):
    """BN-ReLU-conv3x3(stride) - BN-ReLU-conv3x3 (expansion 1)."""
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, shortcut: bool = False):
        super().__init__(inplanes, planes, stride, shortcut)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)

    def residual(self, a):
        return self.conv2(self.relu(self.bn2(self.conv1(a))))


class SepConvNode(nn.Sequential):
    """RandWire's node transformation: ReLU - separable 3x3 conv (depthwise + 1x1) - BN."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
                         nn.Conv2d(cin, cout, 1, bias=False),
                         nn.BatchNorm2d(cout))


def init_resnet(model: nn.Module) -> None:
    """torchvision's ResNet initialisation: Kaiming-normal (fan_out) convs, BN weight 1 bias 0,
    the default Linear init."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
