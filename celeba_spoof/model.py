"""AENet (paper Fig. 4; the released ``intra_dataset_code/models.py``): a ResNet-18 whose 512-d
pooled feature feeds the live/spoof classifier C and the semantic heads S^f (40 face
attributes), S^s (11 spoof types), S^i (5 illuminations), and whose layer4 map feeds the geometric
heads G^d (depth) and G^r (reflection).

Module names are the released model's (``conv1 ... layer4``, ``fc_live``, ``fc_live_attribute``,
``fc_attack``, ``fc_light``, ``depth_final``, ``reflect_final``), so the released checkpoint loads
into ``AENet(terms=ALL)`` (``load_official``) and a torchvision ResNet-18 ImageNet state dict
loads into the trunk (``load_imagenet``). A variant builds only the heads its loss uses, so DDP
needs no unused-parameter search. The environment head ``fc_env`` (label [42]) is ours and off by
default, as in the released model.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock

# loss terms / heads: C live-spoof, Sf attributes, Ss spoof type, Si illumination, Se environment
# (ours), Gd depth, Gr reflection
TERMS = ("C", "Sf", "Ss", "Si", "Se", "Gd", "Gr")
HEAD_NAMES = {"C": "fc_live", "Sf": "fc_live_attribute", "Ss": "fc_attack", "Si": "fc_light",
              "Se": "fc_env", "Gd": "depth_final", "Gr": "reflect_final"}
OUTPUT_NAMES = {"C": "live", "Sf": "attribute", "Ss": "attack", "Si": "light", "Se": "env",
                "Gd": "depth", "Gr": "reflect"}
NUM_OUT = {"C": 2, "Sf": 40, "Ss": 11, "Si": 5, "Se": 3, "Gd": 1, "Gr": 3}


class AENet(nn.Module):
    """AENet with the heads of ``terms`` (any subset of TERMS holding C or Ss, which give the
    spoof score).

    Args:
        terms: the heads to build (a variant's loss terms; see loss.VARIANTS).
        width: base width of the ResNet-18 trunk (64 = ResNet-18; smaller only for fast tests).
        geo_size: side of the depth / reflection maps (the released model: 14).
    """

    def __init__(self, terms=("C", "Sf", "Ss", "Si", "Gd", "Gr"), width: int = 64, geo_size: int = 14):
        super().__init__()
        unknown = set(terms) - set(TERMS)
        terms = tuple(t for t in TERMS if t in set(terms))
        if unknown or not ({"C", "Ss"} & set(terms)):
            raise ValueError(f"terms {terms}: need C or Ss (the spoof score), from {TERMS}")
        self.terms, self.geo_size = terms, geo_size
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(width, 2)
        self.layer2 = self._make_layer(width * 2, 2, stride=2)
        self.layer3 = self._make_layer(width * 4, 2, stride=2)
        self.layer4 = self._make_layer(width * 8, 2, stride=2)
        # AvgPool2d(7) in the released model (7 x 7 layer4 at 224 input): the same there, and
        # defined at the toy's smaller inputs too
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        feat = width * 8
        for t in terms:
            if t in ("Gd", "Gr"):
                head = nn.Conv2d(feat, NUM_OUT[t], kernel_size=3, stride=1, padding=1, bias=False)
            else:
                head = nn.Linear(feat, NUM_OUT[t])
            setattr(self, HEAD_NAMES[t], head)
        # the released model's initialisation (He-normal convs with fan-out, BN = identity);
        # Linear layers keep PyTorch's default
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> dict:
        """-> {live [B,2], attribute [B,40], attack [B,11], light [B,5], env [B,3],
        depth [B,1,14,14], reflect [B,3,14,14]} for the heads that exist (logits; maps after the
        sigmoid and the bilinear upsampling, as released)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        out = {}
        for t in ("Gd", "Gr"):
            if t in self.terms:
                m = torch.sigmoid(getattr(self, HEAD_NAMES[t])(x))
                out[OUTPUT_NAMES[t]] = F.interpolate(m, size=(self.geo_size, self.geo_size),
                                                     mode="bilinear", align_corners=False)
        f = torch.flatten(self.avgpool(x), 1)
        for t in ("C", "Sf", "Ss", "Si", "Se"):
            if t in self.terms:
                out[OUTPUT_NAMES[t]] = getattr(self, HEAD_NAMES[t])(f)
        return out

    @staticmethod
    def spoof_prob(out: dict) -> torch.Tensor:
        """The spoof score: softmax(C)[:, 1] (released code); without C (AENet_S) the spoof-type
        head's probability of anything but Live, 1 - softmax(S^s)[:, 0]."""
        if "live" in out:
            return torch.softmax(out["live"].float(), dim=1)[:, 1]
        return 1.0 - torch.softmax(out["attack"].float(), dim=1)[:, 0]

    # -- weights ---------------------------------------------------------------------------

    def trunk_keys(self) -> list:
        heads = tuple(HEAD_NAMES.values())
        return [k for k in self.state_dict() if not k.startswith(heads)]

    def load_imagenet(self, source: str) -> None:
        """ImageNet weights for the trunk: a local file holding a torchvision ResNet-18 state
        dict (``resnet18-f37072fd.pth``), or ``torchvision`` (downloaded by torchvision once, on
        a machine with internet). The classifier ``fc.*`` is dropped; any missing or mis-shaped
        trunk tensor is an error naming it."""
        if source == "torchvision":
            from torchvision.models import ResNet18_Weights
            try:
                state = ResNet18_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
            except Exception as e:  # no network: say what to do instead
                raise RuntimeError(f"--pretrained torchvision: could not download the ImageNet ResNet-18 weights "
                                   f"({type(e).__name__}: {e}); offline, pass --pretrained /path/to/resnet18-f37072fd.pth "
                                   f"(a torchvision state dict) or --pretrained '' to start from random weights") from e
        else:
            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(f"--pretrained {source}: no such file (a torchvision "
                                        f"ResNet-18 state dict, or 'torchvision' to download it)")
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = state.get("state_dict", state.get("model", state))
        state = {k.replace("module.", "", 1): v for k, v in state.items() if not k.startswith(("fc.", "module.fc."))}
        own = self.state_dict()
        missing = [k for k in self.trunk_keys() if k not in state]
        shape = [k for k in self.trunk_keys() if k in state and state[k].shape != own[k].shape]
        if missing or shape:
            raise ValueError(f"{source}: not a ResNet-18 of width {self.layer1[0].conv1.in_channels}: "
                             f"missing {missing[:5]}, shape mismatch {shape[:5]}")
        self.load_state_dict({k: state[k] for k in self.trunk_keys()}, strict=False)


def official_state_dict(ckpt: dict) -> dict:
    """The released ``ckpt_iter.pth.tar``'s ``state_dict`` with DataParallel's ``module.``
    prefix removed (what its own loader does)."""
    state = ckpt.get("state_dict", ckpt)
    return {k.replace("module.", "", 1): v for k, v in state.items()}


class ReleasedWeightsError(KeyError):
    """A released checkpoint that does not match the model, under strict loading."""

    def __str__(self):  # KeyError quotes its message; this one is a sentence
        return str(self.args[0])


def load_released(model: AENet, ckpt: dict, strict: bool = False, source: str = "checkpoint") -> dict:
    """Load the released checkpoint's tensors into ``model`` by name and report what did not fit.

    The official file is not available to test against, and a release can differ from the code
    that describes it, so by default every tensor whose name and shape match is loaded and the
    rest is reported by name: ``missing`` (in the model, not in the file: those keep their
    initialisation), ``unexpected`` (in the file, not in the model) and ``mismatched`` (same
    name, another shape: ``{name: [file shape, model shape]}``). ``strict=True`` loads nothing and
    raises ReleasedWeightsError naming all of them when any exists.
    """
    state = official_state_dict(ckpt)
    own = model.state_dict()
    mismatched = {k: [list(state[k].shape), list(own[k].shape)] for k in own
                  if k in state and tuple(state[k].shape) != tuple(own[k].shape)}
    report = {"loaded": [k for k in own if k in state and k not in mismatched],
              "missing": sorted(k for k in own if k not in state),
              "unexpected": sorted(k for k in state if k not in own),
              "mismatched": mismatched}
    problems = {k: report[k] for k in ("missing", "unexpected", "mismatched") if report[k]}
    if strict and problems:
        raise ReleasedWeightsError(f"{source}: does not match AENet{list(model.terms)} (strict loading): {problems}")
    model.load_state_dict({k: state[k] for k in report["loaded"]}, strict=False)
    return report


def load_official(path: str | Path, strict: bool = False) -> tuple[AENet, dict]:
    """AENet_C,S,G with the released checkpoint's weights, and the loading report of
    ``load_released`` (strict: every tensor must match)."""
    ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
    model = AENet(terms=("C", "Sf", "Ss", "Si", "Gd", "Gr"))
    return model, load_released(model, ckpt, strict=strict, source=str(path))
