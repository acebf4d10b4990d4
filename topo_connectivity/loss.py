"""The training objective: L = CE + lambda * sum |w_ij| (the paper's sparsity constraint on the
distribution of connectedness; a later paper by the same group states it is an L1 term on the edge
weights). Only learnable edge weights enter the L1 term, and they get no weight decay."""
from __future__ import annotations

import torch
from torch import nn

from topo_connectivity.model import TopoStage

__all__ = ["edge_weights", "edge_l1", "TopoLoss", "param_groups"]


def edge_weights(model: nn.Module) -> list[torch.Tensor]:
    """The learnable edge-weight vectors of every TopoStage of `model`."""
    return [m.weight for m in model.modules() if isinstance(m, TopoStage) and m.weight.requires_grad]


def edge_l1(model: nn.Module) -> torch.Tensor:
    """sum |w_ij| over the learnable edges (0 when there are none); w as the aggregation uses it
    (the sigmoid of the parameter under param=sigmoid)."""
    stages = [m for m in model.modules() if isinstance(m, TopoStage) and m.weight.requires_grad]
    if not stages:
        return torch.zeros(())
    return sum(s.edge_values().abs().sum() for s in stages)


class TopoLoss(nn.Module):
    """CE(logits, target) + l1 * sum |w_ij|; returns (total, {'ce', 'l1'}) where 'l1' is the
    unscaled sum of |w| (what metrics.jsonl logs)."""

    def __init__(self, l1: float = 0.0, label_smoothing: float = 0.0):
        super().__init__()
        self.l1 = float(l1)
        self.ce = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def forward(self, logits, target, model):
        ce = self.ce(logits.float(), target)
        l1 = edge_l1(model).to(ce.device)
        total = ce + self.l1 * l1 if self.l1 else ce
        return total, {"ce": ce.detach(), "l1": l1.detach()}


def param_groups(model: nn.Module, weight_decay: float, edge_lr_mult: float = 1.0) -> list[dict]:
    """Weight decay on every trainable parameter except the edge weights (their only
    regulariser is the L1 term); the edge weights' learning rate is scaled by `edge_lr_mult`
    (the group's "lr_mult", applied by the training loop)."""
    edge_ids = {id(w) for w in edge_weights(model)}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in edge_ids]
    edges = [p for p in model.parameters() if p.requires_grad and id(p) in edge_ids]
    groups = [{"params": rest, "weight_decay": weight_decay}]
    if edges:
        groups.append({"params": edges, "weight_decay": 0.0, "lr_mult": float(edge_lr_mult)})
    return groups
