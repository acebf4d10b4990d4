"""The supernet: gates off equals the plain torchvision network; the gated pass scales each
channel by its marginal exactly where the official code does; slimmed widths equal the exported
network; the architecture step reaches alpha only; torchvision weights load; bad inputs fail."""
import copy

import pytest
import torch
import torchvision
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from dmcp.derive import export_pruned
from dmcp.engine import SearchState, search_step
from dmcp.supernet import build_supernet, make_prunable


def _randomise_bn(net):
    g = torch.Generator().manual_seed(3)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.2, 0.2, generator=g)
                m.running_mean.uniform_(-0.1, 0.1, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2"])
def test_gates_off_equals_the_plain_network(name):
    torch.manual_seed(0)
    plain = getattr(torchvision.models, name)(num_classes=10)
    _randomise_bn(plain)
    plain.eval()
    ref = copy.deepcopy(plain)
    net = make_prunable(plain, input_size=64).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(net(x), ref(x))
    assert set(net.net.state_dict()) == set(ref.state_dict())  # same keys: checkpoints interchange


def _official_gated_reference(plain, net):
    """Hooks on a plain copy placing each gate where the official code does: after BN (ResNet;
    MobileNetV2 stem, projections, last conv) or after ReLU6 (MobileNetV2 expansion, depthwise)."""
    handles = []
    scales = {g.name: g.channel_scale() for g in net.gates}  # differentiable: alpha gradients compare too

    def mul(scale):
        return lambda m, i, o: o * scale.view(1, -1, 1, 1)

    n_feats = len(plain.features) if hasattr(plain, "features") else 0
    for layer in net.layers:
        if layer.kind != "conv":
            continue
        scale = scales[net.gates[layer.out_gate].name]
        container = layer.name.rsplit(".", 1)[0]
        inside_block = n_feats and container not in ("features.0", f"features.{n_feats - 1}")
        if inside_block and isinstance(plain.get_submodule(container), Conv2dNormActivation):
            target = plain.get_submodule(container)  # expansion / depthwise: after ReLU6
        else:
            target = plain.get_submodule(layer.bn)  # after BN
        handles.append(target.register_forward_hook(mul(scale)))
    return handles


@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2"])
def test_gated_pass_scales_by_the_marginals_where_the_official_code_does(name):
    torch.manual_seed(0)
    plain = getattr(torchvision.models, name)(num_classes=10)
    _randomise_bn(plain)
    plain.eval()
    ref = copy.deepcopy(plain)
    net = make_prunable(plain, input_size=64).eval()
    with torch.no_grad():
        for g in net.gates:
            g.alpha.uniform_(-1, 3)
    handles = _official_gated_reference(ref, net)
    net.set_scaling(True)
    x = torch.randn(2, 3, 64, 64)
    out, expected = net(x), ref(x)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    alphas = net.arch_parameters()
    w = torch.randn_like(out)
    ours = torch.autograd.grad((out * w).sum(), alphas)
    theirs = torch.autograd.grad((expected * w).sum(), alphas)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-6)
    for h in handles:
        h.remove()
    # MobileNetV2's first block (no expansion) gates its depthwise output with the stem gate
    if name == "mobilenet_v2":
        assert net.net.features[1].conv[1].in_gate is net.gates[0]


@pytest.mark.parametrize("model", ["toy_resnet", "toy_mobilenet_v2", "resnet18"])
def test_slimmed_supernet_equals_the_exported_network(model):
    torch.manual_seed(0)
    net = build_supernet(model, num_classes=10, input_size=32).eval()
    _randomise_bn(net.net)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 3, 32, 32)
    for states in ([0] * len(net.gates), net.sample_uniform(g), net.sample_markov(g)[0].tolist()):
        plain = export_pruned(net, states).eval()
        assert all(not type(m).__module__.startswith("dmcp") for m in plain.modules())
        net.set_states(states)
        with torch.no_grad():
            torch.testing.assert_close(net(x), plain(x), rtol=1e-5, atol=1e-5)
    net.set_max()


def test_narrow_batchnorm_updates_only_its_channels():
    net = build_supernet("toy_resnet", num_classes=10, input_size=32).train()
    bn = net.net.bn1
    before = bn.running_mean.clone()
    net.set_min()
    net(torch.randn(4, 3, 32, 32))
    k = net.gates[0].spec.min_ch
    assert not torch.equal(bn.running_mean[:k], before[:k])
    assert torch.equal(bn.running_mean[k:], before[k:])


class _Args:
    num_sample, label_smoothing, distill_weight, distill_temperature = 4, 0.1, 1.0, 1.0
    random_decay, random_decay_every, arch_train_freq = 0.9999, 10, 1
    flops, budget_loss, budget_weight, budget_band = 1.0, "log_l1", 0.1, 0.95


def test_architecture_step_computes_gradients_for_alpha_only():
    torch.manual_seed(0)
    net = build_supernet("toy_resnet", num_classes=10, input_size=32)
    opt_w = torch.optim.SGD(net.weight_parameters(), lr=0.0)
    opt_a = torch.optim.SGD(net.arch_parameters(), lr=1.0)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    state = SearchState(total_steps=10, arch_start=0, seed=0)
    alphas = [a.detach().clone() for a in net.arch_parameters()]
    net.zero_grad(set_to_none=True)
    # a tracking hook: weight gradients may only come from the 4 sandwich backward passes
    calls = []
    net.net.fc.weight.register_hook(lambda g: calls.append(1))
    stats = search_step(net, x, y, opt_w, opt_a, state, _Args, amp=False)
    assert len(calls) == 4 and {"arch_ce", "budget", "eflops"} <= set(stats)
    assert all(not torch.equal(a, b) for a, b in zip(alphas, net.arch_parameters()))
    assert all(a.grad is None for a in net.arch_parameters())  # zeroed after the step
    assert state.step == 1 and not any(g.scaling for g in net.gates)


def test_pretrained_weights_from_a_local_file(tmp_path):
    torch.manual_seed(0)
    tv = torchvision.models.resnet18()
    path = tmp_path / "r18.pth"
    torch.save(tv.state_dict(), path)
    net = build_supernet("resnet18", num_classes=10, input_size=64, pretrained=str(path))
    assert torch.equal(net.net.conv1.weight, tv.conv1.weight)
    assert torch.equal(net.net.layer4[1].bn2.running_var, tv.layer4[1].bn2.running_var)
    assert net.net.fc.weight.shape == (10, 512)  # the classifier of another size stays initialised
    with pytest.raises(ValueError, match="not weights of this network"):
        build_supernet("mobilenet_v2", num_classes=10, input_size=64, pretrained=str(path))
    with pytest.raises(ValueError, match="width 1.0 only"):
        build_supernet("mobilenet_v2", max_width=1.5, pretrained="DEFAULT")


def test_unsupported_networks_and_settings_fail_clearly():
    with pytest.raises(TypeError, match="not a torchvision-style ResNet or MobileNetV2"):
        make_prunable(torchvision.models.vgg11())
    with pytest.raises(ValueError, match="grouped convolutions"):
        make_prunable(torchvision.models.resnext50_32x4d(), input_size=32)
    with pytest.raises(ValueError, match="--max-width 1.0"):
        build_supernet("resnet18", max_width=1.5)
    with pytest.raises(ValueError, match="unknown model"):
        build_supernet("vit_b_16")
