"""TopoNet: a network whose stages are DAGs with one learnable weight per edge (the paper, Sec. 3).

`TopoStage` is the paper's complete graph of a stage: n ordered nodes,

    y_0 = T_0(stage input)                       (the transition: stride / channel change)
    x_j = sum_{i<j} w_ij * y_i,  y_j = T_j(x_j)   (j = 1..n-1: aggregate, then transform)
    stage output = sum_i w_i,out * y_i

Edge weights are raw scalars initialised to 1 (the unrolled residual stage), learned by gradient
descent with the network when the stage is trainable, frozen at 1 otherwise. `param="sigmoid"`
learns logits instead (w = sigmoid(a), a initialised to 0: RandWire's positive weights), an option
the design notes leave open. The edge set comes
from a wiring (graphs.py); pruning (pruning.py) keeps a subset and drops the nodes that no longer
reach the output. `TopoNet` is stem -> stage1..stageK -> head, registered in that order so that
torchvision's `IntermediateLayerGetter` (and so `BackboneWithFPN`) can take the stage outputs.
"""
from __future__ import annotations

import torch
from torch import nn

from topo_connectivity.graphs import Graph, check_graph

__all__ = ["TopoStage", "TopoNet"]


class TopoStage(nn.Module):
    """One stage DAG. `nodes[0]` is the transition, `nodes[1:]` the inner nodes; `graph` the wiring.

    Edges are stored as `edge_index` [E, 2] (source, target), sorted by (target, source), where
    target n means the stage output, with `weight` [E]. `trainable=False` freezes every weight at 1
    (the aggregation is then a plain sum, computed incrementally as a hand-wired residual stage
    does, so a residual TopoStage equals the ResNet stage bit for bit).
    """

    def __init__(self, nodes, graph: Graph, trainable: bool = True, param: str = "raw"):
        super().__init__()
        check_graph(graph)
        if len(nodes) != graph.n:
            raise ValueError(f"{len(nodes)} node modules for a graph of {graph.n} nodes")
        self.n = graph.n
        self.nodes = nn.ModuleList(nodes)
        edges = sorted(list(graph.edges) + [(i, graph.n) for i in graph.outputs], key=lambda e: (e[1], e[0]))
        self.register_buffer("edge_index", torch.tensor(edges, dtype=torch.long).reshape(-1, 2))
        if param not in ("raw", "sigmoid"):
            raise ValueError(f"edge parametrisation must be raw or sigmoid, got {param!r}")
        self.param = param if trainable else "raw"
        init = torch.zeros(len(edges)) if self.param == "sigmoid" else torch.ones(len(edges))
        self.weight = nn.Parameter(init, requires_grad=bool(trainable))
        self.trainable = bool(trainable)
        self.total_edges = len(edges)  # before any pruning (edges_total)
        self.original = None  # [[i, j, w], ...] of the edges before the first keep_edges
        self._build_plan()

    # ------------------------------------------------------------------ structure
    def _build_plan(self) -> None:
        """Per target (active node or output, in order): its sources and edge positions."""
        plan = {}
        for e, (i, j) in enumerate(self.edge_index.tolist()):
            plan.setdefault(j, ([], []))
            plan[j][0].append(i)
            plan[j][1].append(e)
        self._plan = [(j, tuple(src), tuple(pos)) for j, (src, pos) in sorted(plan.items())]
        self.active = tuple([0] + [j for j, _, _ in self._plan if j < self.n])

    def edges(self) -> list[tuple[int, int]]:
        """The current (source, target) pairs; target n is the stage output."""
        return [tuple(e) for e in self.edge_index.tolist()]

    def edge_values(self) -> torch.Tensor:
        """The edge weights w [E] the aggregation uses (sigmoid of the parameter if param=sigmoid)."""
        return torch.sigmoid(self.weight) if self.param == "sigmoid" else self.weight

    def set_edge_values(self, w: torch.Tensor) -> None:
        """Set the parameter so that edge_values() == w (a logit for the sigmoid parametrisation)."""
        with torch.no_grad():
            w = torch.as_tensor(w, dtype=self.weight.dtype)
            self.weight.copy_(torch.logit(w.clamp(1e-6, 1 - 1e-6)) if self.param == "sigmoid" else w)

    def strength(self) -> torch.Tensor:
        """|w_ij| / sum_i |w_ij| per edge, normalised over each target's in-edges. BN makes a
        node invariant to a common scale of its in-weights, so only these ratios mean anything."""
        w = self.edge_values().detach().abs()
        tgt = self.edge_index[:, 1]
        total = torch.zeros(self.n + 1, dtype=w.dtype, device=w.device).index_add_(0, tgt, w)
        return w / total[tgt].clamp_min(torch.finfo(w.dtype).tiny)

    def keep_edges(self, keep) -> None:
        """Keep only the edges in `keep` (pairs (i, j), j = n for the output), with their current
        weights; nodes left without a path to the output are replaced by empty modules (their
        parameters leave the model). The kept set must give every kept node an input."""
        keep = {tuple(e) for e in keep}
        current = self.edges()
        unknown = keep - set(current)
        if unknown:
            raise ValueError(f"edges {sorted(unknown)} are not in this stage")
        idx = [e for e, pair in enumerate(current) if pair in keep]
        inner = [current[e] for e in idx if current[e][1] < self.n]
        outputs = [current[e][0] for e in idx if current[e][1] == self.n]
        # nodes that reach the output through kept edges (reverse topological order)
        alive = set(outputs)
        for i, j in sorted(inner, reverse=True):
            if j in alive:
                alive.add(i)
        idx = [e for e in idx if current[e][0] in alive and (current[e][1] in alive or current[e][1] == self.n)]
        has_in = {current[e][1] for e in idx if current[e][1] < self.n}
        orphans = sorted(j for j in alive if j > 0 and j not in has_in)
        if orphans or not outputs:
            raise ValueError(f"keeping {sorted(keep)} leaves nodes {orphans} without input or no output edge")
        if self.original is None:
            self.original = [[i, j, float(w)] for (i, j), w in zip(current, self.edge_values().detach().cpu().tolist())]
        with torch.no_grad():
            w = self.weight.detach()[idx].clone()
        self.edge_index = self.edge_index[idx].clone()
        self.weight = nn.Parameter(w, requires_grad=self.trainable)
        for j in range(self.n):
            if j not in alive:
                self.nodes[j] = nn.Identity()  # placeholder: keeps the indices of the others
        self._build_plan()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._build_plan()

    # ------------------------------------------------------------------ forward
    def _aggregate(self, ys, src, pos, prev, w):
        if not self.trainable:  # frozen at 1: reuse the previous sum when this target extends it
            psrc, psum = prev
            if psum is not None and src[:-1] == psrc and len(src) > 1:
                return psum + ys[src[-1]]
            out = ys[src[0]]
            for i in src[1:]:
                out = out + ys[i]
            return out
        out = ys[src[0]] * w[pos[0]]
        for i, e in zip(src[1:], pos[1:]):
            out = torch.addcmul(out, ys[i], w[e])
        return out

    def forward(self, x):
        w = self.edge_values() if self.trainable else None
        ys = {0: self.nodes[0](x)}
        prev = ((), None)
        for j, src, pos in self._plan:
            agg = self._aggregate(ys, src, pos, prev, w)
            prev = (src, agg)
            if j == self.n:
                return agg
            ys[j] = self.nodes[j](agg)
        raise RuntimeError("stage without an output edge")

    def extra_repr(self) -> str:
        return (f"n={self.n}, edges={len(self.edge_index)}/{self.total_edges}, active={len(self.active)}, "
                f"trainable={self.trainable}, param={self.param}")


class TopoNet(nn.Module):
    """stem -> stage1 .. stageK (TopoStage) -> head. `spec` says how it was built (build.py);
    `stage_info` holds each stage's output channels and stride (for the FPN)."""

    def __init__(self, stem: nn.Module, stages, head: nn.Module, spec: dict, stage_info):
        super().__init__()
        self.stem = stem
        self.stage_names = []
        for k, s in enumerate(stages, 1):
            setattr(self, f"stage{k}", s)
            self.stage_names.append(f"stage{k}")
        self.head = head
        self.spec = dict(spec)
        self.stage_info = [dict(s) for s in stage_info]

    def stages(self):
        return [getattr(self, n) for n in self.stage_names]

    def forward(self, x):
        x = self.stem(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return self.head(x)
