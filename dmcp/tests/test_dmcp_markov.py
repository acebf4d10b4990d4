"""The Markov chain over channel groups: group arithmetic (the spec's examples), transition and
marginal probabilities, expected channels, the gate's per-channel scale, and both samplers."""
import math

import pytest
import torch

from dmcp.markov import GroupSpec, MarkovGate, group_spec


@pytest.mark.parametrize("channels, max_w, expected", [
    (64, 1.0, GroupSpec(64, 10, 6, 9)),        # spec: 64 channels -> min 10, group 6
    (2048, 1.0, GroupSpec(2048, 212, 204, 9)),  # spec: 2048 -> min 212, group 204
    (256, 1.0, GroupSpec(256, 31, 25, 9)),
    (1920, 1.5, GroupSpec(1920, 128, 128, 14)),  # MobileNetV2-1.5 last conv: 14 groups
    (24, 1.5, GroupSpec(24, 10, 1, 14)),
    (9, 1.0, GroupSpec(9, 9, 0, 0)),            # narrower than one channel per group: not pruned
])
def test_official_group_arithmetic(channels, max_w, expected):
    spec = group_spec(channels, 0.1, max_w, 0.1)
    assert spec == expected
    assert spec.min_ch + spec.group * spec.n_groups == channels
    assert spec.states()[-1] == channels and spec.states()[0] == spec.min_ch


@pytest.mark.parametrize("max_w", [1.0, 1.5])
def test_hardware_friendly_groups_are_multiples_of_8(max_w):
    for c in range(8, 2049, 8):
        spec = group_spec(c, 0.1, max_w, 0.1, multiple=8)
        assert spec.min_ch + spec.group * spec.n_groups == c
        if spec.n_groups:
            assert spec.group % 8 == 0 and spec.min_ch % 8 == 0, (c, spec)
            assert spec.min_ch >= 0.1 * c / max_w - 1e-9, (c, spec)
            assert spec.n_groups <= round((max_w - 0.1) / 0.1)
    assert group_spec(64, multiple=8).states() == [8, 16, 24, 32, 40, 48, 56, 64]
    assert group_spec(128, multiple=8).states() == list(range(16, 129, 16))


def test_state_and_channel_round_trip():
    spec = group_spec(64)
    for k, c in enumerate(spec.states()):
        assert spec.channels_at(k) == c and spec.state_of(c) == k
    with pytest.raises(ValueError):
        spec.state_of(11)
    with pytest.raises(ValueError):
        spec.channels_at(10)


def test_marginals_and_expected_channels_hand_worked():
    gate = MarkovGate(GroupSpec(13, 4, 3, 3))
    with torch.no_grad():
        gate.alpha.copy_(torch.tensor([0.0, math.log(3.0), -math.log(3.0)]))
    p = gate.transition_probs()
    torch.testing.assert_close(p, torch.tensor([0.5, 0.75, 0.25]))
    torch.testing.assert_close(gate.marginals(), torch.tensor([0.5, 0.375, 0.09375]))
    assert float(gate.expected_channels().detach()) == pytest.approx(4 + 3 * (0.5 + 0.375 + 0.09375))
    scale = gate.channel_scale()
    assert scale.shape == (13,)
    torch.testing.assert_close(scale, torch.tensor([1.0] * 4 + [0.5] * 3 + [0.375] * 3 + [0.09375] * 3))
    # differentiable in alpha
    gate.expected_channels().backward()
    assert gate.alpha.grad.abs().min() > 0


def test_alpha_starts_at_zero_and_expected_state_snaps_to_the_grid():
    gate = MarkovGate(group_spec(64))
    assert gate.alpha.shape == (9,) and float(gate.alpha.detach().abs().sum()) == 0.0
    # alpha = 0: E = 10 + 6 * (1 - 0.5^9) = 15.988 -> 16 = state 1
    assert gate.expected_state() == 1
    with torch.no_grad():
        gate.alpha.fill_(20.0)
    assert gate.expected_state() == 9


def test_direct_sampling_matches_the_marginals():
    gate = MarkovGate(group_spec(64))
    with torch.no_grad():
        gate.alpha.copy_(torch.linspace(3.0, -1.0, 9))
    states = gate.sample(40000, torch.Generator().manual_seed(0))
    kept = torch.stack([(states >= k + 1).double().mean() for k in range(9)])
    torch.testing.assert_close(kept, gate.marginals().detach().double(), atol=0.01, rtol=0)
    mean_ch = (10 + 6 * states.double()).mean()
    assert float(mean_ch) == pytest.approx(float(gate.expected_channels().detach()), abs=0.1)
