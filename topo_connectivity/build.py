"""Building TopoNets: `build_model(name, wiring, num_classes)`, `from_torchvision(mobilenet_v2)`,
`build_from_graph(graph)` and `hand_wired(model)`.

Families (the stage layout of the original network, every stage a `TopoStage`):
- `resnet18` / `resnet50`: pre-activation ResNet (stem conv7x7-BN-ReLU-maxpool, stages of
  [2, 2, 2, 2] basic / [3, 4, 6, 3] bottleneck nodes, final BN-ReLU, pool, fc). A stage of m blocks
  is a DAG of n = m nodes: node 0 is the first block (stride, projection shortcut), nodes 1..m-1 are
  the residual functions of the others. The residual wiring is the pre-activation ResNet.
- `mobilenet_v2`: torchvision's network; a stage is a run of InvertedResiduals of one output
  width (7 stages of 1, 2, 3, 4, 3, 3, 1 nodes), node 0 the block that changes width or stride.
- `toponet_small`: the paper's TopoNet in RandWire's small regime (C = 78, N = 32): stem
  conv3x3/2 (C/2)-BN, ReLU-conv3x3/2 (C)-BN; stages of N/2, N, N ReLU-SepConv-BN nodes at C, 2C,
  4C channels, node 0 of each with stride 2; head ReLU-conv1x1 (1280)-BN-ReLU, pool, fc.
- `toponet`: the same with `channels`, `nodes` (per stage) and `stem_strides` given (toy runs).
The node counts include node 0, the transition, in every family.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from topo_connectivity.graphs import KINDS, Graph, make_graph
from topo_connectivity.model import TopoNet, TopoStage
from topo_connectivity.nodes import PreActBasic, PreActBottleneck, SepConvNode, init_resnet

__all__ = ["MODELS", "build_model", "from_torchvision", "build_from_graph", "hand_wired", "default_trainable"]

MODELS = ("resnet18", "resnet50", "mobilenet_v2", "toponet_small", "toponet")
# Edge weights learned by default: the learned and complete graphs (the paper) and the random
# graphs (RandWire learns its aggregation weights too); residual and chain keep theirs at 1.
TRAINABLE_DEFAULT = {"learned": True, "complete": True, "er": True, "ba": True, "ws": True,
                     "residual": False, "chain": False}


def default_trainable(wiring: str) -> bool:
    if wiring not in TRAINABLE_DEFAULT:
        raise ValueError(f"unknown wiring {wiring!r}; choose from {', '.join(KINDS)}")
    return TRAINABLE_DEFAULT[wiring]


# ---------------------------------------------------------------------- families
def _preact_resnet(num_classes, graph_fn, trainable, param, block, layers):
    stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                         nn.MaxPool2d(3, 2, 1))
    stages, info, inplanes, stride_total = [], [], 64, 4
    for k, (planes, m) in enumerate(zip((64, 128, 256, 512), layers)):
        stride = 1 if k == 0 else 2
        out = planes * block.expansion
        nodes = [block(inplanes, planes, stride, shortcut=True)] + [block(out, planes) for _ in range(m - 1)]
        stages.append(TopoStage(nodes, graph_fn(k, m), trainable, param))
        stride_total *= stride
        info.append({"channels": out, "stride": stride_total})
        inplanes = out
    head = nn.Sequential(nn.BatchNorm2d(inplanes), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
                         nn.Linear(inplanes, num_classes))
    model = TopoNet(stem, stages, head, {}, info)
    init_resnet(model)
    return model


def _toponet(num_classes, graph_fn, trainable, param, channels=78, nodes=(16, 32, 32), stem_strides=(2, 2),
             head_channels=1280):
    c = int(channels)
    s1, s2 = (int(s) for s in stem_strides)
    stem = nn.Sequential(nn.Conv2d(3, c // 2, 3, s1, 1, bias=False), nn.BatchNorm2d(c // 2),
                         nn.ReLU(inplace=True), nn.Conv2d(c // 2, c, 3, s2, 1, bias=False), nn.BatchNorm2d(c))
    stages, info, cin, stride_total = [], [], c, s1 * s2
    for k, n in enumerate(nodes):
        cout = c * 2 ** k
        node_list = [SepConvNode(cin, cout, 2)] + [SepConvNode(cout, cout) for _ in range(int(n) - 1)]
        stages.append(TopoStage(node_list, graph_fn(k, int(n)), trainable, param))
        stride_total *= 2
        info.append({"channels": cout, "stride": stride_total})
        cin = cout
    head = nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(cin, head_channels, 1, bias=False),
                         nn.BatchNorm2d(head_channels), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(1), nn.Linear(head_channels, num_classes))
    model = TopoNet(stem, stages, head, {}, info)
    init_resnet(model)
    return model


def _mobilenet_stages(tv_model):
    """Group torchvision MobileNetV2 features[1:-1] into stages: a new stage at every block
    without the residual connection."""
    groups = []
    for blk in list(tv_model.features)[1:-1]:
        if not blk.use_res_connect:
            groups.append([blk])
        else:
            groups[-1].append(blk)
    return groups


def _from_mobilenet(tv_model, graph_fn, trainable, param="raw"):
    tv_model = copy.deepcopy(tv_model)
    stem = tv_model.features[0]
    stages, info, stride_total = [], [], 2
    for k, blocks in enumerate(_mobilenet_stages(tv_model)):
        nodes = [blocks[0]] + [b.conv for b in blocks[1:]]  # inner nodes: the residual branch only
        stages.append(TopoStage(nodes, graph_fn(k, len(blocks)), trainable, param))
        stride_total *= blocks[0].stride
        info.append({"channels": blocks[0].out_channels, "stride": stride_total})
    head = nn.Sequential(tv_model.features[-1], nn.AdaptiveAvgPool2d(1), nn.Flatten(1), *tv_model.classifier)
    return TopoNet(stem, stages, head, {}, info)


def _family(name, num_classes, graph_fn, trainable, param="raw", weights=None, **kw):
    if name == "resnet18":
        return _preact_resnet(num_classes, graph_fn, trainable, param, PreActBasic, (2, 2, 2, 2), **kw)
    if name == "resnet50":
        return _preact_resnet(num_classes, graph_fn, trainable, param, PreActBottleneck, (3, 4, 6, 3), **kw)
    if name == "mobilenet_v2":
        import torchvision
        tv = torchvision.models.mobilenet_v2(weights=weights or None, **({} if weights else {"num_classes": num_classes}), **kw)
        if weights and num_classes != tv.classifier[-1].out_features:
            tv.classifier[-1] = nn.Linear(tv.classifier[-1].in_features, num_classes)
        return _from_mobilenet(tv, graph_fn, trainable, param)
    if name == "toponet_small":
        return _toponet(num_classes, graph_fn, trainable, param, channels=78, nodes=(16, 32, 32), **kw)
    if name == "toponet":
        return _toponet(num_classes, graph_fn, trainable, param, **kw)
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")


# ---------------------------------------------------------------------- public builders
def build_model(name: str, wiring: str = "learned", num_classes: int = 1000, *, seed: int = 0,
                graph_params: dict | None = None, trainable: bool | None = None, edge_param: str = "raw",
                weights: str | None = None, **model_args) -> TopoNet:
    """A TopoNet of family `name` whose stages are wired by `wiring` (graphs.py); stage k's random
    graph uses seed `seed + k`. `trainable`: learn the edge weights (default: per wiring, see
    TRAINABLE_DEFAULT); `edge_param`: raw weights (the default) or sigmoid logits. `weights`: torchvision weights for mobilenet_v2 (e.g. "IMAGENET1K_V1";
    downloaded on first use). `model_args`: family options (toponet: channels, nodes, stem_strides)."""
    trainable = default_trainable(wiring) if trainable is None else bool(trainable)
    gp = dict(graph_params or {})

    def graph_fn(k, n):
        return make_graph(wiring, n, seed + k, **gp)

    model = _family(name, num_classes, graph_fn, trainable, edge_param, weights=weights, **model_args)
    model.spec = {"model": name, "wiring": wiring, "num_classes": int(num_classes), "seed": int(seed),
                  "graph_params": gp, "trainable": trainable, "edge_param": edge_param if trainable else "raw",
                  "model_args": dict(model_args)}
    return model


def from_torchvision(tv_model: nn.Module, wiring: str = "residual", *, seed: int = 0,
                     graph_params: dict | None = None, trainable: bool | None = None) -> TopoNet:
    """A TopoNet holding a (copy of a) torchvision MobileNetV2's modules and weights. With the
    residual wiring it computes exactly what the torchvision model computes."""
    if not hasattr(tv_model, "features") or not hasattr(tv_model, "classifier"):
        raise TypeError(f"from_torchvision takes a torchvision MobileNetV2, got {type(tv_model).__name__}")
    trainable = default_trainable(wiring) if trainable is None else bool(trainable)
    gp = dict(graph_params or {})
    model = _from_mobilenet(tv_model, lambda k, n: make_graph(wiring, n, seed + k, **gp), trainable)
    model.spec = {"model": "mobilenet_v2", "wiring": wiring, "num_classes": int(tv_model.classifier[-1].out_features),
                  "seed": int(seed), "graph_params": gp, "trainable": trainable, "model_args": {}}
    return model


def build_from_graph(graph: dict) -> TopoNet:
    """Rebuild the network of a `graph.json` (pruning.graph_record): the family, every stage's
    original edges with their recorded weights, then only the `kept` edges."""
    try:
        stages = graph["stages"]
        spec = {"model": graph["model"], "num_classes": int(graph["num_classes"])}
    except (KeyError, TypeError) as e:
        raise ValueError(f"not a graph.json record: missing {e}") from None

    def graph_fn(k, n):
        st = stages[k]
        if int(st["nodes"]) != n:
            raise ValueError(f"graph.json stage {k + 1} has {st['nodes']} nodes, the model's stage has {n}")
        inner = tuple((int(i), int(j)) for i, j, _ in st["edges"] if int(j) < n)
        outs = tuple(int(i) for i, j, _ in st["edges"] if int(j) == n)
        return Graph(n, inner, outs)

    trainable = bool(graph.get("trainable", True))
    param = graph.get("edge_param", "raw")
    model = _family(spec["model"], spec["num_classes"], graph_fn, trainable, param, **graph.get("model_args", {}))
    if len(model.stages()) != len(stages):
        raise ValueError(f"graph.json has {len(stages)} stages, {spec['model']} has {len(model.stages())}")
    for stage, st in zip(model.stages(), stages):
        w = {(int(i), int(j)): float(v) for i, j, v in st["edges"]}
        stage.set_edge_values(torch.tensor([w[e] for e in stage.edges()]))
        kept = [tuple(int(x) for x in e) for e in st.get("kept", st["edges"])]
        if len(kept) != len(st["edges"]):
            stage.keep_edges([e[:2] for e in kept])
    model.spec = {**spec, "wiring": graph.get("wiring", "learned"), "seed": int(graph.get("seed", 0)),
                  "graph_params": dict(graph.get("graph_params", {})), "trainable": trainable, "edge_param": param,
                  "model_args": dict(graph.get("model_args", {}))}
    return model


class _Residual(nn.Module):
    """x + F(x): one hand-wired residual block around an inner node."""

    def __init__(self, branch: nn.Module):
        super().__init__()
        self.branch = branch

    def forward(self, x):
        return x + self.branch(x)


def hand_wired(model: TopoNet) -> nn.Module:
    """The plain network a residual (or chain) TopoNet stands for, sharing its modules: each stage
    becomes node 0 followed by residual blocks x + T_j(x) (residual wiring) or by the bare T_j
    (chain). The baseline of bench_dag.py and of the wiring tests."""
    stages = []
    for stage in model.stages():
        edges = stage.edges()
        n = stage.n
        complete = set(edges) == {(i, j) for j in range(1, n + 1) for i in range(j)}
        chain = set(edges) == {(j - 1, j) for j in range(1, n + 1)}
        ones = bool(torch.all(stage.edge_values().detach() == 1))
        if complete and not chain and ones:
            stages.append(nn.Sequential(stage.nodes[0], *[_Residual(m) for m in list(stage.nodes)[1:]]))
        elif chain and ones:
            stages.append(nn.Sequential(*stage.nodes))
        else:
            raise ValueError("hand_wired needs a residual (complete) or chain wiring with every weight 1")
    return nn.Sequential(model.stem, *stages, model.head)
