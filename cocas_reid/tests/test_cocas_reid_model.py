"""PK sampler, BC-Net (Eq. 1-2, mask module, branches) and the losses (Eq. 3-4) against hand values."""
import numpy as np
import pytest
import torch

from cocas_reid.loss import BCNetLoss, batch_hard_triplet
from cocas_reid.model import BCNet, BiometricBranch, MaskModule
from cocas_reid.sampler import PKBatchSampler


def _labels():
    # 10 identities; identity 3 has 2 images (< K), the others 3-7
    counts = [5, 3, 7, 2, 4, 6, 3, 5, 4, 3]
    return np.repeat(np.arange(10) * 7 + 100, counts)


def test_pk_batches_hold_p_ids_times_k_images():
    labels = _labels()
    s = PKBatchSampler(labels, p=4, k=4, seed=1, rounds=2, rank=0, world_size=1)
    batches = list(s)
    assert len(batches) == len(s) == 2 * (10 // 4)
    for b in batches:
        ids, counts = np.unique(labels[b], return_counts=True)
        assert len(b) == 16 and ids.size == 4 and (counts == 4).all()
        for i in ids:  # without replacement unless the identity has fewer than K images
            idx = np.asarray(b)[labels[b] == i]
            if (labels == i).sum() >= 4:
                assert np.unique(idx).size == 4
    # identity 121 has 2 images < K: drawn with replacement, 4 entries of at most 2 images
    drawn = [np.asarray(b)[labels[b] == 121] for e in range(4) for b in s.global_batches(e)]
    drawn = [d for d in drawn if d.size]
    assert drawn and all(d.size == 4 and np.unique(d).size <= 2 for d in drawn)


def test_pk_order_depends_on_seed_and_epoch_only_and_resumes():
    labels = _labels()
    a = PKBatchSampler(labels, 4, 4, seed=5, rank=0, world_size=1)
    a.set_epoch(3)
    fresh = PKBatchSampler(labels, 4, 4, seed=5, rank=0, world_size=1)  # a resumed run's sampler
    fresh.set_epoch(3)
    assert [list(x) for x in a] == [list(x) for x in fresh]
    fresh.set_epoch(4)
    assert [list(x) for x in a] != [list(x) for x in fresh]


def test_ranks_take_disjoint_ids_of_the_same_global_batches():
    labels = _labels()
    one = PKBatchSampler(labels, 4, 4, seed=2, rank=0, world_size=1)
    ranks = [PKBatchSampler(labels, 4, 4, seed=2, rank=r, world_size=2) for r in range(2)]
    for s in [one, *ranks]:
        s.set_epoch(7)
    for whole, b0, b1 in zip(one, *ranks):
        assert len(b0) == len(b1) == 8
        assert not set(labels[b0]) & set(labels[b1])  # no identity on two ranks
        assert b0 + b1 == whole  # together: the single-process global batch
    with pytest.raises(ValueError, match="divisible"):
        PKBatchSampler(labels, 4, 4, rank=0, world_size=3)


def test_eq1_biometric_feature_equals_the_loop():
    torch.manual_seed(0)
    branch = BiometricBranch("resnet18", mask=True, mask_hidden=8, mask_maps=3).eval()
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        a = branch.trunk(x)
        m = branch.mask(a)
        f = branch(x)
    b, d, h, w = a.shape
    assert m.shape == (b, 1, h, w) and (h, w) == (4, 2)  # last stride 1: stride 16
    # M: max over maps of a softmax over the H x W positions, times HW
    scores = branch.mask.unit(a)
    loop_m = torch.zeros(b, h, w)
    for i in range(b):
        sm = torch.stack([torch.softmax(scores[i, c].flatten(), 0).view(h, w) for c in range(3)])
        loop_m[i] = sm.max(dim=0).values * h * w
    torch.testing.assert_close(m[:, 0], loop_m)
    loop_f = torch.zeros(b, d)
    for i in range(b):
        for k in range(d):
            loop_f[i, k] = sum(a[i, k, y, xx] * loop_m[i, y, xx] for y in range(h) for xx in range(w)) / (h * w)
    torch.testing.assert_close(f, loop_f, rtol=1e-4, atol=1e-5)


def test_uniform_mask_is_global_average_pooling():
    mod = MaskModule(4, hidden=2, maps=2)
    for p in mod.parameters():
        torch.nn.init.zeros_(p)
    a = torch.randn(3, 4, 5, 2)
    torch.testing.assert_close(mod(a), torch.ones(3, 1, 5, 2))


def test_bcnet_branches_fusion_and_gradients():
    torch.manual_seed(0)
    x, c = torch.randn(4, 3, 32, 16), torch.randn(4, 3, 16, 16)
    labels = torch.tensor([0, 0, 1, 1])
    for branch, dim in (("bc", 24), ("bf", 512), ("cf", 512)):
        net = BCNet(5, branch, "resnet18", weights="", feat_dim=24, mask_hidden=8).train()
        out = net(x if branch != "cf" else None, c if branch != "bf" else None)
        assert out["feat"].shape == (4, dim) and out["logits"].shape == (4, 5)
        assert ("logits_b" in out) == (branch == "bc")
        BCNetLoss()(out, labels)["total"].backward()
        assert all(p.grad is not None for p in net.parameters()), branch
    net = BCNet(5, "bc", "resnet18", weights="", feat_dim=24, mask_hidden=8).eval()
    with torch.no_grad():  # Eq. 2: f = W [f^B ; f^C] + b
        f = net(x, c)["feat"]
        ref = net.fusion(torch.cat([net.biometric(x), net.clothes(c)], 1))
    torch.testing.assert_close(f, ref)
    assert set(net(x, c)) == {"feat"}  # evaluation: the feature only


def test_batch_hard_triplet_hand_values():
    # 1-D features: ids A at 0, 1; B at 3, 7
    f = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    y = torch.tensor([0, 0, 1, 1])
    # anchor 0: d_ap 1, d_an 3 -> 0; anchor 1: d_ap 1, d_an 2 -> 0 (margin 0.3: 1 - 2 + .3 < 0)
    # anchor 3(=3.0): d_ap 4, d_an 2 -> 2.3; anchor 7: d_ap 4, d_an 6 -> 0
    assert batch_hard_triplet(f, y, 0.3).item() == pytest.approx(2.3 / 4, abs=1e-5)
    assert batch_hard_triplet(f, y, 3.0).item() == pytest.approx((1 + 2 + 5 + 1) / 4, abs=1e-5)
    with pytest.raises(ValueError, match="negative"):
        batch_hard_triplet(f, torch.zeros(4, dtype=torch.long))


def test_loss_terms_eq3_eq4():
    torch.manual_seed(1)
    out = {"feat": torch.randn(8, 6), "logits": torch.randn(8, 4), "feat_b": torch.randn(8, 5), "logits_b": torch.randn(8, 4)}
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    ce = torch.nn.functional.cross_entropy
    full = BCNetLoss(alpha=0.5, margin=0.2)(out, y)
    want = ce(out["logits"], y) + 0.5 * batch_hard_triplet(out["feat"], y, 0.2) + \
        ce(out["logits_b"], y) + 0.5 * batch_hard_triplet(out["feat_b"], y, 0.2)
    torch.testing.assert_close(full["total"], want)
    assert set(full) == {"id", "tri", "id_b", "tri_b", "total"}
    assert set(BCNetLoss(id_only=True)(out, y)) == {"id", "id_b", "total"}
    assert set(BCNetLoss(fb_loss=False)(out, y)) == {"id", "tri", "total"}
    assert set(BCNetLoss(fb_triplet=False)(out, y)) == {"id", "tri", "id_b", "total"}
