"""BC-Net (Yu et al., COCAS, CVPR 2020, Sec. 4 and Fig. 3): a biometric branch and a clothes branch
whose features are fused into the re-id feature.

- Biometric branch: ResNet (last stride 1) -> feature map A (D x H x W) -> mask module -> M
  (1 x H x W) -> f^B_k = 1/(HW) sum_ij (A_k o M)_ij (Eq. 1), with its own ID classifier.
- Clothes branch: ResNet + global average pooling -> f^C, from the clothes template (queries and
  training) or the clothes patch cut from the gallery image by the clothes detector.
- Fusion: f = W [f^B ; f^C] + b (Eq. 2), with the ID classifier of the whole model.

`branches`: "bc" (both, fused), "bf" (biometric only: f = f^B) or "cf" (clothes only: f = f^C),
the ablation rows of Table 2. `mask=False` replaces M by ones, so Eq. 1 becomes global average
pooling (the "without mask" row).
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
import torchvision
from torch import nn

__all__ = ["BRANCHES", "MaskModule", "BiometricBranch", "ClothesBranch", "BCNet", "resnet_trunk", "load_resnet"]

BRANCHES = ("bc", "bf", "cf")
log = logging.getLogger("cocas_reid")


def load_resnet(name: str, weights: str = "") -> nn.Module:
    """A torchvision ResNet: `weights` is '' (random init), a torchvision weight name
    (IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT) or a local checkpoint file (a state dict, or a dict
    holding one under 'state_dict' / 'model'); missing and unexpected keys are logged by name."""
    if name not in ("resnet18", "resnet34", "resnet50", "resnet101"):
        raise ValueError(f"--backbone {name!r}: expected resnet18, resnet34, resnet50 or resnet101")
    if weights and not Path(weights).is_file():
        try:
            w = torchvision.models.get_model_weights(name)[weights]
        except KeyError:
            raise ValueError(f"--weights {weights!r}: neither a file nor a torchvision weight name of {name} "
                             f"({', '.join(torchvision.models.get_model_weights(name).__members__)})") from None
        return getattr(torchvision.models, name)(weights=w)
    model = getattr(torchvision.models, name)(weights=None)
    if weights:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        for key in ("state_dict", "model"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
        state = {k.removeprefix("module."): v for k, v in state.items()}
        res = model.load_state_dict(state, strict=False)
        missing = [k for k in res.missing_keys if not k.startswith("fc.")]
        if missing or res.unexpected_keys:
            log.warning("%s: missing keys %s, unexpected keys %s", weights, missing[:20], res.unexpected_keys[:20])
    return model


def resnet_trunk(name: str, weights: str = "", last_stride: int = 1) -> tuple[nn.Sequential, int]:
    """The ResNet up to layer4 (no pooling, no fc) and its channel count; `last_stride=1` keeps
    layer4 at stride 16 (a larger map, as re-id baselines do)."""
    net = load_resnet(name, weights)
    if last_stride == 1:
        for m in net.layer4[0].modules():
            if isinstance(m, nn.Conv2d) and m.stride == (2, 2):
                m.stride = (1, 1)
    elif last_stride != 2:
        raise ValueError(f"--last-stride {last_stride}: expected 1 or 2")
    trunk = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4)
    return trunk, net.fc.in_features


class MaskModule(nn.Module):
    """Fig. 3's mask module: a conv unit gives `maps` score maps, each normalised by a softmax over
    the H x W positions; M is their maximum over the maps, times HW (so a uniform mask is 1
    everywhere and Eq. 1 with M = 1 is global average pooling)."""

    def __init__(self, in_channels: int, hidden: int = 256, maps: int = 4):
        super().__init__()
        self.unit = nn.Sequential(nn.Conv2d(in_channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
                                  nn.ReLU(inplace=True), nn.Conv2d(hidden, maps, 1))

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        b, _, h, w = a.shape
        scores = self.unit(a).flatten(2).float()  # B x maps x HW; the softmax in fp32
        m = torch.softmax(scores, dim=2).amax(dim=1) * (h * w)
        return m.view(b, 1, h, w).to(a.dtype)


class BiometricBranch(nn.Module):
    """A -> (mask module) -> f^B = 1/(HW) sum_ij (A o M)_ij (Eq. 1)."""

    def __init__(self, backbone: str, weights: str = "", last_stride: int = 1, mask: bool = True,
                 mask_hidden: int = 256, mask_maps: int = 4):
        super().__init__()
        self.trunk, self.dim = resnet_trunk(backbone, weights, last_stride)
        self.mask = MaskModule(self.dim, mask_hidden, mask_maps) if mask else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.trunk(x)
        if self.mask is not None:
            a = a * self.mask(a)
        return a.mean(dim=(2, 3))


class ClothesBranch(nn.Module):
    """Template or clothes patch -> ResNet -> global average pooling -> f^C."""

    def __init__(self, backbone: str, weights: str = "", last_stride: int = 1):
        super().__init__()
        self.trunk, self.dim = resnet_trunk(backbone, weights, last_stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x).mean(dim=(2, 3))


def _classifier(dim: int, num_classes: int) -> nn.Linear:
    fc = nn.Linear(dim, num_classes)
    nn.init.normal_(fc.weight, std=0.001)
    nn.init.zeros_(fc.bias)
    return fc


class BCNet(nn.Module):
    """The two-branch network; `forward(image, clothes)` returns `feat` (f, the re-id feature),
    `logits` (its ID classifier) and, when `fb_classifier`, `feat_b` / `logits_b` (f^B and the
    biometric branch's own classifier, for L^{fB})."""

    def __init__(self, num_classes: int, branches: str = "bc", backbone: str = "resnet50", weights: str = "",
                 clothes_backbone: str = "", last_stride: int = 1, mask: bool = True, mask_hidden: int = 256,
                 mask_maps: int = 4, feat_dim: int = 2048, fb_classifier: bool = True):
        super().__init__()
        if branches not in BRANCHES:
            raise ValueError(f"--branches {branches!r}: expected one of {BRANCHES}")
        self.branches = branches
        self.biometric = BiometricBranch(backbone, weights, last_stride, mask, mask_hidden, mask_maps) \
            if branches in ("bc", "bf") else None
        self.clothes = ClothesBranch(clothes_backbone or backbone, weights, last_stride) \
            if branches in ("bc", "cf") else None
        if branches == "bc":
            self.fusion = nn.Linear(self.biometric.dim + self.clothes.dim, feat_dim)  # Eq. 2
            self.feat_dim = feat_dim
        else:
            self.fusion = None
            self.feat_dim = (self.biometric or self.clothes).dim
        self.classifier = _classifier(self.feat_dim, num_classes) if num_classes > 0 else None
        self.classifier_b = _classifier(self.biometric.dim, num_classes) \
            if branches == "bc" and fb_classifier and num_classes > 0 else None

    @property
    def needs_clothes(self) -> bool:
        return self.clothes is not None

    def forward(self, image: torch.Tensor | None = None, clothes: torch.Tensor | None = None) -> dict:
        fb = self.biometric(image) if self.biometric is not None else None
        fc = self.clothes(clothes) if self.clothes is not None else None
        if self.branches == "bc":
            f = self.fusion(torch.cat([fb, fc], dim=1))
        else:
            f = fb if fb is not None else fc
        out = {"feat": f}
        if self.training and self.classifier is not None:
            out["logits"] = self.classifier(f)
            if self.classifier_b is not None:
                out["feat_b"], out["logits_b"] = fb, self.classifier_b(fb)
        return out
