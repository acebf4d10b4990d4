"""The stage DAG: exact equality with the hand-wired networks, wiring-independent MAdds, pruning."""
import pytest
import torch
import torchvision

from shared.metrics.flops import count_madds
from topo_connectivity import build_from_graph, build_model, from_torchvision, hand_wired
from topo_connectivity.graphs import make_graph
from topo_connectivity.model import TopoStage
from topo_connectivity.nodes import PreActBottleneck
from topo_connectivity.pruning import edges_to_keep, graph_record, prune_model

MOBILENET_V2_MADDS = 300_774_272
RESNET50_MADDS = 4_089_184_256


def test_residual_mobilenet_v2_equals_torchvision():
    torch.manual_seed(0)
    tv = torchvision.models.mobilenet_v2(weights=None).eval()
    with torch.no_grad():  # non-trivial BN statistics, so the comparison means something
        for m in tv.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    net = from_torchvision(tv, "residual").eval()
    assert [s.n for s in net.stages()] == [1, 2, 3, 4, 3, 3, 1]
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(net(x), tv(x), rtol=0, atol=1e-5)
    assert count_madds(net, (1, 3, 224, 224)) == count_madds(tv, (1, 3, 224, 224)) == MOBILENET_V2_MADDS
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == sum(p.numel() for p in tv.parameters())


@pytest.mark.parametrize("wiring", ["residual", "learned", "chain", "ws", "er"])
def test_resnet50_madds_do_not_depend_on_the_wiring(wiring):
    net = build_model("resnet50", wiring, 1000)
    assert [s.n for s in net.stages()] == [3, 4, 6, 3]
    assert count_madds(net, (1, 3, 224, 224)) == RESNET50_MADDS


def _stage(wiring, trainable=False):
    torch.manual_seed(0)
    nodes = [PreActBottleneck(16, 8, 2, shortcut=True)] + [PreActBottleneck(32, 8) for _ in range(3)]
    stage = TopoStage(nodes, make_graph(wiring, 4), trainable)
    with torch.no_grad():
        for m in stage.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    return stage.eval()


def test_residual_stage_is_the_hand_wired_preactivation_stage():
    stage = _stage("residual")
    x = torch.randn(2, 16, 12, 12)
    b0, b1, b2, b3 = stage.nodes
    with torch.no_grad():
        z = b0(x)  # the first block: projection shortcut + F
        for b in (b1, b2, b3):
            z = z + b(z)  # x + F(x), pre-activation
        assert torch.equal(stage(x), z)
        learned = _stage("learned", trainable=True)  # weights at their initial 1: the same function
        torch.testing.assert_close(learned(x), z, rtol=0, atol=1e-6)


def test_chain_stage_is_a_plain_stack():
    stage = _stage("chain")
    x = torch.randn(2, 16, 12, 12)
    with torch.no_grad():
        assert torch.equal(stage(x), torch.nn.Sequential(*stage.nodes)(x))


def test_hand_wired_network_equals_the_residual_toponet():
    net = build_model("toponet", "residual", 10, channels=8, nodes=[3, 4], stem_strides=[1, 1]).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(net(x), hand_wired(net)(x))
    with pytest.raises(ValueError):
        hand_wired(build_model("toponet", "ws", 10, channels=8, nodes=[3, 6], stem_strides=[1, 1]))


def test_edge_weights_learn_only_where_trainable():
    x = torch.randn(2, 3, 16, 16)
    for wiring, learns in (("learned", True), ("ws", True), ("residual", False), ("chain", False)):
        net = build_model("toponet", wiring, 10, channels=8, nodes=[3, 5], stem_strides=[1, 1])
        net(x).sum().backward()
        for s in net.stages():
            assert s.weight.requires_grad == learns
            if learns:
                assert s.weight.grad is not None and s.weight.grad.abs().sum() > 0


def _perturbed(seed=0):
    torch.manual_seed(seed)
    net = build_model("toponet", "learned", 10, channels=8, nodes=[4, 6], stem_strides=[1, 1])
    with torch.no_grad():
        for s in net.stages():
            s.weight.copy_(torch.rand_like(s.weight) ** 3)  # many small edges
    return net.eval()


def _cut_node2(net):
    """Stage 1: node 2's outgoing edges nearly 0, so pruning removes node 2 itself."""
    s = net.stages()[0]
    with torch.no_grad():
        for e, (i, _) in enumerate(s.edges()):
            if i == 2:
                s.weight[e] = 1e-4
    return net


def test_pruned_net_equals_unpruned_with_those_edges_zeroed():
    net = _cut_node2(_perturbed())
    x = torch.randn(3, 3, 16, 16)
    keep = [set(edges_to_keep(s, 0.15)) for s in net.stages()]
    zeroed = _cut_node2(_perturbed())
    with torch.no_grad():
        for s, k in zip(zeroed.stages(), keep):
            for e, pair in enumerate(s.edges()):
                if pair not in k:
                    s.weight[e] = 0.0
        expected = zeroed(x)
    before = count_madds(net, (1, 3, 16, 16))
    info = prune_model(net, 0.15)
    assert info["edges_kept"] < info["edges_total"]
    with torch.no_grad():
        torch.testing.assert_close(net(x), expected, rtol=0, atol=1e-6)
    assert info["nodes_removed"] >= 1 and net.stages()[0].active == (0, 1, 3)
    assert count_madds(net, (1, 3, 16, 16)) < before  # a removed node's convolutions are gone
    for s in net.stages():  # every kept node still has an input, every target its strongest edge
        targets = {j for _, j in s.edges()}
        assert set(s.active[1:]) <= targets and s.n in targets


def test_graph_record_rebuilds_the_pruned_network():
    net = _perturbed(1)
    prune_model(net, 0.2)
    record = graph_record(net, 16)
    assert record["edges_kept"] == sum(len(s.edges()) for s in net.stages()) < record["edges_total"]
    rebuilt = build_from_graph(record)
    rebuilt.load_state_dict(net.state_dict())
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x), net(x))


def test_keep_edges_refuses_a_node_without_input():
    stage = _stage("learned", trainable=True)
    with pytest.raises(ValueError, match="without input"):
        stage.keep_edges([(1, 2), (2, 4)])
