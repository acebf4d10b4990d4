"""TopoNet: learning the connectivity of neural networks from a topological perspective
(Yuan, Li, Shao, Yan, ECCV 2020). Stages as complete DAGs with one learnable weight per edge, an L1
sparsity term on the weights, pruning and fine-tuning; random, residual, chain and complete wirings
as baselines."""
from topo_connectivity.build import build_from_graph, build_model, from_torchvision, hand_wired
from topo_connectivity.graphs import Graph, make_graph
from topo_connectivity.model import TopoNet, TopoStage

__all__ = ["TopoStage", "TopoNet", "Graph", "make_graph", "build_model", "from_torchvision", "build_from_graph",
           "hand_wired"]
