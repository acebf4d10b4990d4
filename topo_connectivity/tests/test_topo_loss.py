"""The objective: CE + lambda * sum |w|, no weight decay on edges, and what the L1 term does."""
import torch

from topo_connectivity import build_model
from topo_connectivity.loss import TopoLoss, edge_l1, edge_weights, param_groups
from topo_connectivity.pruning import count_edges


def _net(wiring="learned"):
    torch.manual_seed(0)
    return build_model("toponet", wiring, 4, channels=8, nodes=[3, 6], stem_strides=[1, 1])


def test_l1_term_and_loss_value():
    net = _net()
    with torch.no_grad():
        net.stages()[0].weight.mul_(-2.0)  # |w| counts, not w
    expected = 2.0 * len(net.stages()[0].weight) + len(net.stages()[1].weight)
    assert float(edge_l1(net).detach()) == expected
    x, y = torch.randn(2, 3, 8, 8), torch.tensor([0, 3])
    logits = net(x)
    total, parts = TopoLoss(0.01)(logits, y, net)
    ce = torch.nn.functional.cross_entropy(logits, y)
    torch.testing.assert_close(total, ce + 0.01 * expected)
    assert float(parts["l1"]) == expected
    assert float(edge_l1(_net("residual"))) == 0.0  # frozen weights are not regularised


def test_no_weight_decay_on_edge_weights():
    net = _net()
    groups = param_groups(net, 1e-4)
    edge_ids = {id(w) for w in edge_weights(net)}
    assert {id(p) for p in groups[1]["params"]} == edge_ids and groups[1]["weight_decay"] == 0.0
    assert not edge_ids & {id(p) for p in groups[0]["params"]} and groups[0]["weight_decay"] == 1e-4
    n = sum(p.numel() for g in groups for p in g["params"])
    assert n == sum(p.numel() for p in net.parameters() if p.requires_grad)


def _train(l1: float, steps: int = 40):
    net = _net()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 3, 8, 8, generator=g)
    y = (x[:, 0].mean((1, 2)) > 0).long() + 2 * (x[:, 1].mean((1, 2)) > 0).long()
    opt = torch.optim.SGD(param_groups(net, 0.0), lr=0.05, momentum=0.9)
    loss_fn = TopoLoss(l1)
    for i in range(steps):
        sl = slice(16 * (i % 4), 16 * (i % 4 + 1))
        loss, _ = loss_fn(net(x[sl]), y[sl], net)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


def test_l1_leaves_more_edges_below_the_threshold():
    threshold = 0.1
    dense = count_edges(_train(0.0), threshold)
    sparse = count_edges(_train(0.05), threshold)
    assert dense[0] == sparse[0]
    assert sparse[1] < dense[1], (sparse, dense)  # fewer edges would survive pruning
