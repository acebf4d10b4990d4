"""The class-wise dynamic graph convolution: equal to the dense N x N reference, classes isolated,
node cap, masks, gradients."""
import pytest
import torch

from cdgcnet.graph import GraphLayer, class_knn, dense_graph_layer, group_nodes, key_subsets
from cdgcnet.model import CDGCModule, CDGCNet


def _layer(dim=16, embed=8, knn=4, seed=0, sim="dot"):
    torch.manual_seed(seed)
    layer = GraphLayer(dim, embed, knn, similarity=sim).eval()
    with torch.no_grad():  # non-trivial BN statistics
        layer.bn.running_mean.uniform_(-0.2, 0.2)
        layer.bn.running_var.uniform_(0.5, 1.5)
    return layer


@pytest.mark.parametrize("embed,chunk,sim", [(8, 1 << 22, "dot"), (0, 1 << 22, "dot"), (8, 5000, "dot"), (8, 1 << 22, "cosine")])
def test_class_wise_equals_dense_reference(embed, chunk, sim):
    layer = _layer(embed=embed, sim=sim)
    layer.chunk_elems = chunk  # 5000: every class searched alone, in row chunks
    x = torch.randn(300, 16, dtype=torch.float64)
    labels = torch.randint(0, 5, (300,))
    labels[:3] = 7  # a class smaller than K: padded slots get weight 0
    layer = layer.double()
    groups = group_nodes(labels.view(1, 300, 1), 8)
    out = layer(x, groups, key_subsets(groups, 0, training=False))
    ref = dense_graph_layer(layer, x, labels)
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=0)


def test_chunked_knn_equals_one_chunk():
    q, k = torch.randn(200, 8), torch.randn(200, 8)
    groups = group_nodes(torch.randint(0, 3, (1, 200, 1)), 3)
    a = class_knn(q, k, groups, groups, 6, chunk_elems=1 << 22)
    b = class_knn(q, k, groups, groups, 6, chunk_elems=50)  # one row per chunk
    assert torch.equal(a[0].sort(1).values, b[0].sort(1).values) and torch.equal(a[1], b[1])


def test_perturbing_class_j_never_changes_class_k():
    torch.manual_seed(0)
    module = CDGCModule(dim=12, num_classes=4, layers=2, knn=5, embed_dim=6, mask="hard").eval()
    x = torch.randn(2, 12, 9, 11)
    coarse = torch.randn(2, 4, 9, 11)
    labels = coarse.argmax(1)
    y = module(x, coarse)
    for j in range(4):
        pert = x.clone()
        sel = (labels == j).unsqueeze(1).expand_as(x)
        pert[sel] += 5 * torch.randn(int(sel.sum()))
        y2 = module(pert, coarse)
        others = (labels != j).unsqueeze(1).expand_as(x)
        torch.testing.assert_close(y2[others], y[others], atol=0, rtol=0)
        assert not torch.allclose(y2[sel], y[sel])
    # and another image never changes this one's graphs
    pert = x.clone()
    pert[1] += 3
    torch.testing.assert_close(module(pert, coarse)[0], y[0], atol=0, rtol=0)


def test_key_cap_random_in_training_even_in_evaluation():
    nodes = [torch.arange(100), torch.arange(100, 103)]
    ev = key_subsets(nodes, 10, training=False)
    assert torch.equal(ev[0], torch.linspace(0, 99, 10).round().long()) and torch.equal(ev[1], nodes[1])
    torch.manual_seed(1)
    tr = key_subsets(nodes, 10, training=True)
    assert len(tr[0]) == 10 and len(set(tr[0].tolist())) == 10 and not torch.equal(tr[0], ev[0])
    # with a cap, each node still gets a refined feature; neighbours come from the pool only
    layer = _layer()
    x = torch.randn(100, 16)
    nb, a = layer.adjacency(x, [nodes[0]], [ev[0]])
    assert set(nb.flatten().tolist()) <= set(ev[0].tolist()) and torch.allclose(a.sum(1), torch.ones(100))


def test_masks_and_gradients():
    torch.manual_seed(0)
    gt = torch.randint(0, 3, (2, 32, 48))
    gt[:, :4] = 255
    for mask in ("hard", "soft", "gt"):
        net = CDGCNet(3, backbone="tiny", tiny_width=8, dim=8, head_dim=8, aux_dim=8, embed_dim=4, knn=3, mask=mask)
        out = net(torch.randn(2, 3, 32, 48), gt)
        assert out["final"].shape == (2, 3, 4, 6) and out["aux"].shape == (2, 3, 4, 6)
        sum(v.sum() for v in out.values()).backward()
        no_grad = [n for n, p in net.named_parameters() if p.grad is None]
        assert not no_grad, no_grad
    net.eval()
    assert set(net(torch.randn(1, 3, 32, 48))) == {"final", "coarse"}  # gt masks fall back to argmax


def test_gt_mask_uses_labels_where_valid():
    module = CDGCModule(dim=4, num_classes=3, mask="gt").train()
    coarse = torch.zeros(1, 3, 2, 2)
    coarse[:, 2] = 1  # argmax: class 2 everywhere
    gt = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1], [255, 255, 1, 1], [255, 255, 1, 1]]])
    assert module.class_map(coarse, gt).tolist() == [[[0, 1], [2, 1]]]


def test_chunked_neighbour_products_have_exact_gradients():
    from cdgcnet.graph import _GatherDot, _GatherSum

    torch.manual_seed(0)
    q, k, x = (torch.randn(13, 5, dtype=torch.float64, requires_grad=True) for _ in range(3))
    a = torch.rand(13, 4, dtype=torch.float64, requires_grad=True)
    nb = torch.randint(0, 13, (13, 4))
    assert torch.autograd.gradcheck(lambda q, k: _GatherDot.apply(q, k, nb, 7), (q, k))
    assert torch.autograd.gradcheck(lambda a, x: _GatherSum.apply(a, x, nb, 7), (a, x))
    torch.testing.assert_close(_GatherSum.apply(a, x, nb, 7), torch.einsum("nk,nkd->nd", a, x[nb]))
