"""Analytic FLOPs against shared.metrics.flops.count_madds (the ground truth): the paper's
networks at full width, and exported networks at random widths; gate and alpha counts; the
expected FLOPs' gradient."""
import pytest
import torch

from dmcp.derive import export_pruned
from dmcp.supernet import build_supernet
from shared.metrics.flops import count_madds, count_params


@pytest.mark.parametrize("model, max_width, madds, gates, alphas", [
    ("resnet50", 1.0, 4_089_184_256, 37, 333),
    ("resnet18", 1.0, 1_814_073_344, 12, 108),
    ("mobilenet_v2", 1.0, 300_774_272, 25, 225),
    ("mobilenet_v2", 1.5, 672_832_704, 25, 350),
])
def test_full_width_equals_counted_madds(model, max_width, madds, gates, alphas):
    torch.manual_seed(0)
    net = build_supernet(model, max_width=max_width)
    assert int(net.madds(net.full_channels())) == madds
    assert count_madds(export_pruned(net, copy_weights=False), (1, 3, 224, 224)) == madds
    assert len(net.gates) == gates and net.num_alphas() == alphas
    # at alpha = 0 (p = 0.5 everywhere) the expected network is a few percent of the full one
    ratio = float(net.expected_flops().detach()) / madds
    assert 0.03 < ratio < 0.09
    if model == "resnet50":
        assert ratio == pytest.approx(0.0555, abs=5e-4)


@pytest.mark.parametrize("model, max_width, multiple, size", [
    ("resnet50", 1.0, 1, 64), ("resnet18", 1.0, 8, 64), ("mobilenet_v2", 1.5, 1, 64),
    ("mobilenet_v2", 1.0, 8, 64), ("toy_resnet", 1.0, 1, 32), ("toy_mobilenet_v2", 1.0, 1, 32),
])
def test_random_widths_equal_counted_madds_and_params(model, max_width, multiple, size):
    torch.manual_seed(0)
    net = build_supernet(model, num_classes=10, input_size=size, max_width=max_width, multiple=multiple)
    g = torch.Generator().manual_seed(1)
    for i in range(3):
        states = net.sample_uniform(g) if i else [0] * len(net.gates)
        channels = net.channels_of(states)
        plain = export_pruned(net, states, copy_weights=False)
        assert int(net.madds(channels)) == count_madds(plain, (1, 3, size, size))
        assert int(net.params(channels)) == count_params(plain)
        if multiple == 8:
            assert all(c % 8 == 0 for c, g_ in zip(channels.tolist(), net.gates) if g_.spec.n_groups)


def test_vectorised_counts_match_one_by_one():
    net = build_supernet("resnet18", num_classes=10, input_size=64)
    states = net.sample_markov(torch.Generator().manual_seed(0), 50)
    batch = net.madds(net.channels_of(states))
    single = torch.stack([net.madds(net.channels_of(s)) for s in states])
    assert torch.equal(batch, single)


def test_expected_flops_is_differentiable_in_every_alpha():
    net = build_supernet("mobilenet_v2", max_width=1.5, input_size=64)
    with torch.no_grad():
        for gate in net.gates:
            gate.alpha.uniform_(-2, 2)
    e = net.expected_flops()
    # its value is the FLOPs of the expected widths (the depthwise detach changes only gradients)
    assert float(e.detach()) == pytest.approx(float(net.madds(net.expected_channels().detach())), rel=1e-9)
    e.backward()
    for gate in net.gates:
        if gate.spec.n_groups:
            assert gate.alpha.grad is not None and bool((gate.alpha.grad > 0).all()), gate.name
