"""CDGCNet: a dilated ResNet, a coarse head, the CDGC module and the fusion head (paper Fig. 2).

Coarse-to-fine (Sec. 3): the backbone (output stride 8) feeds a coarse head that predicts P; the
CDGC module turns argmax P into class masks M_k, projects the backbone feature to node features X
(1x1 conv to D), refines them with class-wise dynamic graph convolutions (`cdgcnet.graph`, Eq. A
and G) into Y, and the fusion head classifies concat(X, Y) (Eq. F). An auxiliary head on layer3
adds deep supervision, as in the PSPNet / CCNet family. ``cdgc=False`` gives the baseline: the same
network with the fusion head on X alone.

Backbones: torchvision ``resnet101`` / ``resnet50`` with the strides of layer3 and layer4 replaced
by dilation 2 and 4 (output stride 8), or ``tiny``, a four-stage residual network of the same shape
(output stride 8, dilated last two stages) for the toy data and the tests.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cdgcnet.graph import GraphLayer, group_nodes, key_subsets

__all__ = ["CDGCNet", "CDGCModule", "TinyBackbone", "build_backbone", "MASK_MODES"]

MASK_MODES = ("hard", "soft", "gt")


def conv_bn_relu(cin, cout, k=1, dilation=1, stride=1):
    pad = dilation * (k - 1) // 2
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Block(nn.Module):
    """Residual block of two 3x3 convolutions (the tiny backbone's unit)."""

    def __init__(self, cin, cout, stride=1, dilation=1):
        super().__init__()
        self.conv1 = conv_bn_relu(cin, cout, 3, dilation, stride)
        self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, dilation, dilation=dilation, bias=False),
                                   nn.BatchNorm2d(cout))
        self.short = (nn.Identity() if stride == 1 and cin == cout else
                      nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x):
        return torch.relu(self.conv2(self.conv1(x)) + self.short(x))


class TinyBackbone(nn.Module):
    """Stem (stride 4) and four residual stages; output stride 8, layer3/layer4 dilated 2/4."""

    def __init__(self, width: int = 32):
        super().__init__()
        w = width
        self.stem = nn.Sequential(conv_bn_relu(3, w // 2, 3, stride=2), conv_bn_relu(w // 2, w, 3, stride=2))
        self.layer1 = _Block(w, w)
        self.layer2 = _Block(w, 2 * w, stride=2)
        self.layer3 = _Block(2 * w, 3 * w, dilation=2)
        self.layer4 = _Block(3 * w, 4 * w, dilation=4)
        self.channels = (3 * w, 4 * w)

    def forward(self, x):
        c3 = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return c3, self.layer4(c3)


class _ResNetOS8(nn.Module):
    """A torchvision ResNet with dilated layer3 / layer4 (output stride 8), returning (c3, c4)."""

    def __init__(self, net):
        super().__init__()
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.channels = (net.layer3[-1].conv3.out_channels, net.layer4[-1].conv3.out_channels)

    def forward(self, x):
        c3 = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return c3, self.layer4(c3)


def build_backbone(name: str, pretrained: str = "", tiny_width: int = 32) -> nn.Module:
    """``resnet101`` | ``resnet50`` (torchvision; ``pretrained`` is a torchvision weight name such as
    ``IMAGENET1K_V1`` or a local state-dict file) or ``tiny`` (random initialisation only)."""
    if name == "tiny":
        if pretrained:
            raise ValueError("--pretrained is not available for the tiny backbone")
        return TinyBackbone(tiny_width)
    import torchvision

    if name not in ("resnet50", "resnet101"):
        raise ValueError(f"--backbone {name!r}: use resnet101, resnet50 or tiny")
    builder = getattr(torchvision.models, name)
    weights = None
    if pretrained and not Path(pretrained).is_file():
        enum = torchvision.models.get_model_weights(name)
        try:
            weights = enum[pretrained]
        except KeyError:
            raise ValueError(f"--pretrained {pretrained!r}: neither a file nor a torchvision weight name of {name} "
                             f"({', '.join(enum.__members__)})") from None
    net = builder(weights=weights, replace_stride_with_dilation=[False, True, True])
    if pretrained and weights is None:
        state = torch.load(pretrained, map_location="cpu", weights_only=True)
        state = state.get("model", state.get("state_dict", state))
        missing, unexpected = net.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing:
            raise ValueError(f"--pretrained {pretrained}: missing backbone weights {missing[:5]}... ({len(missing)})")
    return _ResNetOS8(net)


class CDGCModule(nn.Module):
    """Class masks from the coarse prediction, class-wise dynamic graph convolutions on the node
    features X, the refined features Y at every pixel (scattered back to the class's pixels).

    mask: ``hard`` (M_k = 1[argmax P = k]), ``soft`` (the same graphs; each node's feature is
    weighted by its class probability P_k before the graph, so the masks stay differentiable) or
    ``gt`` (ground-truth masks in training where labelled, argmax P elsewhere and at inference).
    """

    def __init__(self, dim: int, num_classes: int, layers: int = 2, knn: int = 8, embed_dim: int = 128,
                 max_nodes: int = 4096, mask: str = "hard", similarity: str = "dot"):
        super().__init__()
        if mask not in MASK_MODES:
            raise ValueError(f"--mask {mask!r}: use one of {MASK_MODES}")
        self.num_classes, self.max_nodes, self.mask = num_classes, max_nodes, mask
        self.layers = nn.ModuleList(GraphLayer(dim, embed_dim, knn, similarity=similarity) for _ in range(layers))

    def class_map(self, coarse: torch.Tensor, gt: torch.Tensor | None) -> torch.Tensor:
        labels = coarse.argmax(1)
        if self.mask == "gt" and self.training and gt is not None:
            g = F.interpolate(gt.unsqueeze(1).float(), size=labels.shape[-2:], mode="nearest").squeeze(1).long()
            labels = torch.where(g < self.num_classes, g, labels)
        return labels

    def forward(self, x: torch.Tensor, coarse: torch.Tensor, gt: torch.Tensor | None = None) -> torch.Tensor:
        b, d, h, w = x.shape
        labels = self.class_map(coarse.detach(), gt)
        feats = x.permute(0, 2, 3, 1).reshape(-1, d)
        if self.mask == "soft":
            prob = coarse.float().softmax(1).permute(0, 2, 3, 1).reshape(-1, self.num_classes)
            feats = feats * prob.gather(1, labels.reshape(-1, 1)).to(feats.dtype)
        groups = group_nodes(labels, self.num_classes)
        keys = key_subsets(groups, self.max_nodes, self.training)
        for layer in self.layers:
            feats = layer(feats, groups, keys)
        return feats.reshape(b, h, w, d).permute(0, 3, 1, 2)


class CDGCNet(nn.Module):
    """Backbone -> coarse head (P) and node features X -> CDGC (Y) -> fusion concat(X, Y) -> final.

    forward(images, gt=None) returns logits at output stride 8: ``{"final", "coarse"}`` and, in
    training, ``"aux"`` (layer3 head).
    """

    def __init__(self, num_classes: int, backbone: str = "resnet101", pretrained: str = "", dim: int = 256,
                 head_dim: int = 512, aux_dim: int = 256, cdgc: bool = True, layers: int = 2, knn: int = 8,
                 embed_dim: int = 128, max_nodes: int = 4096, mask: str = "hard", dropout: float = 0.1,
                 tiny_width: int = 32, similarity: str = "dot"):
        super().__init__()
        self.backbone = build_backbone(backbone, pretrained, tiny_width)
        c3, c4 = self.backbone.channels
        self.coarse_head = nn.Sequential(conv_bn_relu(c4, head_dim, 3), nn.Dropout2d(dropout),
                                         nn.Conv2d(head_dim, num_classes, 1))
        self.aux_head = nn.Sequential(conv_bn_relu(c3, aux_dim, 3), nn.Dropout2d(dropout),
                                      nn.Conv2d(aux_dim, num_classes, 1))
        self.node_proj = conv_bn_relu(c4, dim, 1)  # X: 1x1 to D
        self.cdgc = (CDGCModule(dim, num_classes, layers, knn, embed_dim, max_nodes, mask, similarity)
                     if cdgc else None)
        self.fuse = conv_bn_relu(2 * dim if cdgc else dim, dim, 1)  # Eq. F: concat(X, Y) -> 1x1 conv
        self.classifier = nn.Sequential(nn.Dropout2d(dropout), nn.Conv2d(dim, num_classes, 1))

    def forward(self, images: torch.Tensor, gt: torch.Tensor | None = None) -> dict:
        c3, c4 = self.backbone(images)
        coarse = self.coarse_head(c4)
        x = self.node_proj(c4)
        if self.cdgc is not None:
            x = torch.cat([x, self.cdgc(x, coarse, gt)], dim=1)
        out = {"final": self.classifier(self.fuse(x)), "coarse": coarse}
        if self.training:
            out["aux"] = self.aux_head(c3)
        return out
