"""Tests of shared.metrics.flops: reference MAdds of torchvision models and hand-worked layers."""
import pytest
import torch
import torchvision
from torch import nn

from shared.metrics.flops import count_madds, count_params, madds_breakdown


@pytest.mark.parametrize("name, expected", [
    ("resnet18", 1_814_073_344),
    ("resnet50", 4_089_184_256),
    ("mobilenet_v2", 300_774_272),
])
def test_torchvision_reference_numbers(name, expected):
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None)
    assert count_madds(model, (1, 3, 224, 224)) == expected
    if name == "resnet18":
        assert count_params(model) == 11_689_512
        # the count covers the batch given
        assert count_madds(model, torch.zeros(2, 3, 224, 224)) == 2 * expected


def test_grouped_and_depthwise_conv_hand_worked():
    grouped = nn.Conv2d(8, 16, 3, padding=1, groups=4)
    # out 16x10x10 = 1600 elements, each over 8/4 = 2 channels x 3x3
    assert count_madds(grouped, (1, 8, 10, 10)) == 1600 * 2 * 9
    depthwise = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
    # out 8x5x5 = 200 elements, each over 1 channel x 3x3
    assert count_madds(depthwise, (1, 8, 10, 10)) == 200 * 9
    dense = nn.Conv2d(8, 16, 3, padding=1)
    assert count_madds(dense, (1, 8, 10, 10)) == 4 * count_madds(grouped, (1, 8, 10, 10))


def test_conv1d_conv3d_transposed_and_dilation():
    assert count_madds(nn.Conv1d(4, 6, 5), (1, 4, 20)) == (6 * 16) * 4 * 5
    assert count_madds(nn.Conv3d(2, 3, (1, 3, 3), padding=(0, 1, 1)), (1, 2, 4, 8, 8)) == (3 * 4 * 8 * 8) * 2 * 9
    assert count_madds(nn.Conv2d(4, 4, 3, dilation=2), (1, 4, 9, 9)) == (4 * 5 * 5) * 4 * 9
    # transposed: every input element is scattered to out_channels/groups x kernel outputs
    assert count_madds(nn.ConvTranspose2d(4, 6, 3, stride=2), (1, 4, 5, 5)) == 100 * 6 * 9
    assert count_madds(nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2), (1, 4, 5, 5)) == 100 * 3 * 9


def test_linear_counts_every_leading_dimension():
    assert count_madds(nn.Linear(10, 5), (3, 10)) == 3 * 5 * 10
    assert count_madds(nn.Linear(10, 5, bias=False), (2, 4, 10)) == 2 * 4 * 5 * 10


def test_only_conv_and_linear_counted_no_bn_no_bias():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=True), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2), nn.Softmax(dim=1))
    expected = (4 * 8 * 8) * 3 * 9 + 2 * 4
    assert count_madds(model, (1, 3, 8, 8)) == expected
    rows = madds_breakdown(model, (1, 3, 8, 8))
    assert rows == [("0", "Conv2d", 4 * 8 * 8 * 3 * 9), ("6", "Linear", 8)]


def test_shared_module_counted_per_call_and_multiple_inputs():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 3)

        def forward(self, a, b):
            return self.fc(a) + self.fc(b)

    m = TwoInputs()
    assert count_madds(m, ((2, 6), (2, 6))) == 2 * (2 * 3 * 6)
    assert madds_breakdown(m, (torch.zeros(1, 6), torch.zeros(4, 6))) == [("fc", "Linear", (1 + 4) * 3 * 6)]


def test_training_mode_restored_and_forward_in_eval_no_grad():
    seen = {}

    class Probe(nn.Module):
        def forward(self, x):
            seen["training"] = self.training
            seen["grad"] = torch.is_grad_enabled()
            return x

    model = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3), Probe())
    model.train()
    model[1].eval()  # a frozen BN inside a training model keeps its own flag
    count_madds(model, (1, 3, 4, 4))
    assert seen == {"training": False, "grad": False}
    assert model.training and model[0].training and not model[1].training and model[2].training
    model.eval()
    count_madds(model, (1, 3, 4, 4))
    assert not model.training


def test_hooks_removed_and_mode_restored_on_error():
    class Boom(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    model = nn.Sequential(nn.Conv2d(3, 3, 1), Boom())
    model.train()
    with pytest.raises(RuntimeError):
        count_madds(model, (1, 3, 4, 4))
    assert model.training and model[0].training
    assert len(model[0]._forward_hooks) == 0


def test_functional_calls_and_multihead_attention_not_counted():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(3, 4))

        def forward(self, x):
            return torch.nn.functional.linear(x, self.w)

    assert count_madds(Functional(), (2, 4)) == 0
    mha = nn.MultiheadAttention(8, 2)
    assert count_madds(mha, ((5, 1, 8), (5, 1, 8), (5, 1, 8))) == 0


def test_count_params_trainable_and_shared():
    lin = nn.Linear(4, 3)  # 15 parameters
    model = nn.Sequential(lin, nn.ReLU(), lin, nn.BatchNorm1d(3))  # shared linear counted once; BN 6 (+ buffers)
    assert count_params(model) == 15 + 6
    model[3].weight.requires_grad_(False)
    assert count_params(model, trainable_only=True) == 15 + 3
