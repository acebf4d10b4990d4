"""Supernet and children: the path through the supernet is the child network; the chain
topology is MobileNetV2 itself (torchvision, weights copied); every parameter of a path learns."""
import torch
import torchvision
from torch import nn

from st_nas.model import ChildNet, MBConv, Supernet, build_child, dag_forward
from st_nas.space import Skeleton, chain_arch, sample_arch

TOY = Skeleton(input_size=32, num_classes=10, stem_width=16, stem_stride=1, first_width=8, widths=(16, 24, 32, 48, 64, 96),
               strides=(2, 2, 1, 2, 1, 1), nodes=(3, 3, 4, 3, 3, 2), last_width=64)


def _perturb_bn(model, x, arch):
    """Non-trivial BN statistics: a few training-mode forwards."""
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(x, arch)
    model.eval()


def test_supernet_path_equals_build_child():
    torch.manual_seed(0)
    net = Supernet(TOY)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 32, 32)
    for t in range(4):
        arch = sample_arch(TOY, g, density=None if t % 2 else 0.4)
        _perturb_bn(net, x, arch)
        child = build_child(net, arch).eval()
        torch.testing.assert_close(net(x, arch), child(x), atol=1e-5, rtol=0)
        net.train()
        child.train()
        torch.testing.assert_close(net(x, arch), child(x), atol=1e-5, rtol=0)  # batch statistics too


def test_child_from_scratch_has_only_the_path():
    arch = chain_arch(TOY)
    child = ChildNet(TOY, arch)
    assert sorted(child.stages[2].edges.keys()) == ["0_1", "1_2", "2_3"]
    net = Supernet(TOY)
    assert len(net.stages[2].edges) == 6 and all(len(m) == len(TOY.ops) for m in net.stages[2].edges.values())


def _copy(dst: nn.Module, src: nn.Module) -> None:
    """Copy src's tensors into dst in registration order (same layer sequence, other names)."""
    d, s = dst.state_dict(), src.state_dict()
    assert [v.shape for v in d.values()] == [v.shape for v in s.values()]
    dst.load_state_dict(dict(zip(d.keys(), s.values())))


def test_chain_architecture_is_torchvision_mobilenet_v2():
    """A chain-only architecture (k3e6 on every edge, stem/t=1 block/head of the skeleton) equals
    MobileNetV2-1.0 hand-wired from torchvision's InvertedResidual blocks, weights copied."""
    sk = Skeleton()
    arch = chain_arch(sk, "k3e6")
    ours = ChildNet(sk, arch).eval()
    torch.manual_seed(1)
    tv = torchvision.models.mobilenet_v2(weights=None).eval()
    with torch.no_grad():  # random BN statistics so that they matter
        for m in tv.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.normal_(1, 0.1)
                m.bias.normal_(0, 0.1)
    feats = list(tv.features)
    _copy(ours.stem, feats[0])
    _copy(ours.first, feats[1])
    k = 2
    for s, block in enumerate(arch):
        for i, j, _ in block:
            assert isinstance(feats[k], torchvision.models.mobilenetv2.InvertedResidual)
            _copy(ours.stages[s].edges[f"{i}_{j}"], feats[k])
            k += 1
    _copy(ours.head, feats[k])
    _copy(ours.classifier, tv.classifier[1])
    x = torch.randn(2, 3, 224, 224)
    torch.testing.assert_close(ours(x), tv(x), atol=1e-5, rtol=1e-4)


def test_chain_block_equals_a_hand_wired_stack():
    torch.manual_seed(2)
    ops = [MBConv(8, 16, 5, 3, 2), MBConv(16, 16, 7, 6, 1), MBConv(16, 16, 3, 3, 1)]
    stack = nn.Sequential(*ops).eval()
    x = torch.randn(2, 8, 12, 12)
    out = dag_forward(x, 4, [(0, 1, ops[0]), (1, 2, ops[1]), (2, 3, ops[2])])
    torch.testing.assert_close(out, stack(x), atol=0, rtol=0)
    assert not ops[0].residual and ops[1].residual


def test_dag_sums_incoming_edges():
    a, b, c = nn.Identity(), nn.Conv2d(2, 2, 1, bias=False), nn.Conv2d(2, 2, 1, bias=False)
    x = torch.randn(1, 2, 3, 3)
    out = dag_forward(x, 3, [(0, 1, a), (0, 2, b), (1, 2, c)])
    torch.testing.assert_close(out, b(x) + c(a(x)))


def test_every_parameter_of_the_path_gets_a_gradient():
    torch.manual_seed(3)
    net = Supernet(TOY)
    arch = sample_arch(TOY, torch.Generator().manual_seed(4))
    net(torch.randn(2, 3, 32, 32), arch).sum().backward()
    with_grad = {n for n, p in net.named_parameters() if p.grad is not None}
    index = {op: k for k, op in enumerate(TOY.ops)}
    expected = set()
    for name, _ in net.named_parameters():
        if not name.startswith("stages."):
            expected.add(name)
            continue
        parts = name.split(".")  # stages.s.edges.i_j.op.rest
        s, edge, op = int(parts[1]), parts[3], int(parts[4])
        i, j = map(int, edge.split("_"))
        if any((i, j) == (a, b) and index[o] == op for a, b, o in arch[s]):
            expected.add(name)
    assert with_grad == expected and len(expected) < len(list(net.parameters()))
