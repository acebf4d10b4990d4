"""Deriving architectures: expected sampling snapped to the grid and repaired into the budget
band, direct sampling by rejection, arch.json records that rebuild without dmcp, and the
torch.export program."""
import json

import pytest
import torch

from dmcp.derive import BudgetError, derive, direct_sampling, expected_sampling, export_pruned, uniform_scaling
from dmcp.export import build_pruned, save_program
from dmcp.supernet import build_supernet
from shared.metrics.flops import count_madds, count_params


def _trained_like(net, seed=0, low=-1.0, high=4.0):
    """Alphas as after a search: mostly high, some low."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for gate in net.gates:
            gate.alpha.copy_(torch.empty(gate.alpha.shape).uniform_(low, high, generator=g))
    return net


@pytest.fixture(scope="module")
def r50():
    torch.manual_seed(0)
    return build_supernet("resnet50", input_size=224)


def test_expected_sampling_snaps_to_the_grid(r50):
    _trained_like(r50)
    states, info = expected_sampling(r50)
    for gate, k in zip(r50.gates, states):
        e = float(gate.expected_channels().detach())
        assert 0 <= k <= gate.spec.n_groups
        # the nearest state to round(E[C])
        assert abs(gate.spec.channels_at(k) - round(e)) <= gate.spec.group / 2 + 1
    assert info["repaired_groups"] == 0


@pytest.mark.parametrize("target", [1100e6, 2200e6, 2800e6])
def test_expected_sampling_is_repaired_into_the_band(r50, target):
    _trained_like(r50, seed=1)

    def no_forward(*args):
        raise AssertionError("derivation ran the network")

    r50.net.forward = no_forward  # analytic counts only (milliseconds: bench/bench_derive.py), no forward pass
    try:
        rec = derive(r50, target, "es")
    finally:
        del r50.net.forward
    assert 0.95 * target <= rec["madds"] <= target and rec["target_madds"] == target
    raw = rec["derivation"]["es_madds"]
    assert (rec["derivation"]["repaired_groups"] > 0) == (not 0.95 * target <= raw <= target)


def test_exported_network_counts_inside_the_band(r50):
    _trained_like(r50, seed=2)
    rec = derive(r50, 2200e6, "es")
    states = [rec["gates"][g.name]["state"] for g in r50.gates]
    plain = export_pruned(r50, states, copy_weights=False)
    counted = count_madds(plain, (1, 3, 224, 224))
    assert counted == rec["madds"] and 0.95 * 2200e6 <= counted <= 2200e6
    assert count_params(plain) == rec["params"]


def test_direct_sampling_by_rejection_stays_in_the_band(r50):
    _trained_like(r50, seed=3, low=1.0, high=4.0)
    target = float(r50.madds(r50.channels_of(r50.sample_markov(torch.Generator().manual_seed(0), 256))).median())
    kept, info = direct_sampling(r50, target, n=20, generator=torch.Generator().manual_seed(1))
    f = r50.madds(r50.channels_of(kept))
    assert len(kept) == 20 and bool(((f >= 0.95 * target) & (f <= target)).all())
    assert 0 < info["accept_rate"] <= 1
    rec = derive(r50, target, "ds", generator=torch.Generator().manual_seed(2))
    assert 0.95 * target <= rec["madds"] <= target


def test_impossible_budgets_fail_clearly(r50):
    with pytest.raises(BudgetError, match="minimum architecture"):
        derive(r50, 10e6, "es")
    with torch.no_grad():
        for g in r50.gates:
            g.alpha.fill_(-8.0)  # the chains almost never keep a group
    with pytest.raises(BudgetError, match="direct sampling"):
        direct_sampling(r50, 3000e6, n=1, batch=256, max_draws=1024)
    with pytest.raises(ValueError, match="unknown derivation"):
        derive(r50, 2000e6, "greedy")


def test_arch_json_rebuilds_the_network_without_dmcp_modules(tmp_path):
    torch.manual_seed(0)
    net = _trained_like(build_supernet("toy_mobilenet_v2", num_classes=10, input_size=32))
    rec = derive(net, 1.2e6, "es")
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(rec))
    arch = json.loads(path.read_text())
    model = build_pruned(arch)
    assert count_madds(model, (1, 3, 32, 32)) == arch["madds"]
    assert all(type(m).__module__.split(".")[0] in ("torch", "torchvision") for m in model.modules())
    states = [arch["gates"][g.name]["state"] for g in net.gates]
    inherited = export_pruned(net, states).eval()
    model.load_state_dict(inherited.state_dict())  # same structure and keys
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), inherited(x))
    # the torch.export program runs with plain torch, any batch size
    save_program(model, tmp_path / "pruned.pt2", 32)
    prog = torch.export.load(str(tmp_path / "pruned.pt2")).module()
    x5 = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(prog(x5), model(x5), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model", ["toy_resnet", "toy_mobilenet_v2"])
def test_uniform_scaling_is_the_widest_uniform_network_in_the_budget(model):
    torch.manual_seed(0)
    net = build_supernet(model, num_classes=10, input_size=32)
    target = 0.5 * float(net.madds(net.full_channels()))
    rec = uniform_scaling(net, target)
    w = rec["width_multiplier"]
    assert 0.95 * target <= rec["madds"] <= target and rec["method"] == "uniform"
    for g in net.gates:  # one multiplier for every prunable layer
        c = rec["gates"][g.name]["channels"]
        assert c == (max(1, round(w * g.spec.channels)) if g.spec.n_groups else g.spec.channels)
    wider = [max(1, round((w + 0.02) * g.spec.channels)) if g.spec.n_groups else g.spec.channels for g in net.gates]
    assert int(net.madds(wider)) > target  # a slightly wider uniform network does not fit
    model_ = build_pruned(rec)
    assert count_madds(model_, (1, 3, 32, 32)) == rec["madds"]
    with pytest.raises(BudgetError, match="narrowest uniform"):
        uniform_scaling(net, 1000.0)
