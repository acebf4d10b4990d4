import pytest
import torch

from bsnpp.labels import valid_map_mask
from bsnpp.model import BSNPP, reverse_boundary


def _model(**kw):
    torch.manual_seed(0)
    cfg = dict(in_channels=16, tscale=12, num_sample=4, hidden_1d=16, hidden_2d=8, hidden_3d=16, cbg_width=8)
    cfg.update(kw)
    return BSNPP(**cfg)


def test_shapes_and_invalid_cells_zero():
    m = _model()
    out = m(torch.randn(3, 16, 12))
    assert out["start"].shape == (3, 12) and out["end_bwd"].shape == (3, 12)
    assert out["reg"].shape == (3, 3, 12, 12) and out["cls"].shape == (3, 3, 12, 12)
    invalid = ~torch.tensor(valid_map_mask(12, 12))
    assert (out["reg"][..., invalid] == 0).all() and (out["cls"][..., invalid] == 0).all()
    fused = BSNPP.fuse(out)
    assert fused["reg"].shape == (3, 12, 12)
    assert ((fused["start"] >= 0) & (fused["start"] <= 1)).all()


def test_every_parameter_gets_a_gradient():
    m = _model()
    # gamma/beta of the attention start at 0; give them a value so every path is exercised
    with torch.no_grad():
        m.prb.pos.gamma.fill_(0.5)
        m.prb.chan.beta.fill_(0.5)
    out = m(torch.randn(2, 16, 12))
    loss = sum(v.float().sum() for k, v in out.items())
    loss.backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing


@pytest.mark.parametrize("kw,heads,bwd", [
    (dict(cbg="tem", bidirectional=False, prb="none"), 1, False),  # BMN
    (dict(prb="position"), 2, True),
    (dict(prb="channel", bidirectional=False), 2, False),
])
def test_ablation_switches(kw, heads, bwd):
    out = _model(**kw)(torch.randn(2, 16, 12))
    assert out["reg"].shape[1] == heads and ("start_bwd" in out) == bwd


def test_batched_equals_single_in_eval():
    m = _model().eval()
    x = torch.randn(4, 16, 12)
    with torch.no_grad():
        full = m(x)
        one = m(x[2:3])
    for k in ("start", "end", "reg", "cls"):
        torch.testing.assert_close(full[k][2:3], one[k], atol=1e-5, rtol=1e-5)


def test_reverse_pass_supervision_matches_reversed_video_targets():
    """The backward outputs, flipped back, are supervised with the forward targets (roles
    swapped); that is right only if the reversed video's start targets are the flipped end
    targets of the forward video."""
    import numpy as np

    from bsnpp.data import make_targets

    T = 20
    gt = np.array([[0.13, 0.42], [0.6, 0.97]])
    fwd = make_targets(gt, T)
    bwd = make_targets(np.stack([1 - gt[:, 1], 1 - gt[:, 0]], 1), T)
    np.testing.assert_allclose(reverse_boundary(torch.from_numpy(bwd["start"])).numpy(), fwd["end"], atol=1e-6)
    np.testing.assert_allclose(reverse_boundary(torch.from_numpy(bwd["end"])).numpy(), fwd["start"], atol=1e-6)


def test_bidirectional_fusion_is_sqrt_of_complementary_outputs():
    out = {"start": torch.tensor([[0.25]]), "end": torch.tensor([[0.81]]),
           "start_bwd": torch.tensor([[0.01]]), "end_bwd": torch.tensor([[1.0]]),
           "reg": torch.ones(1, 2, 1, 1), "cls": torch.tensor([[[[0.2]], [[0.4]]]])}
    f = BSNPP.fuse(out)
    torch.testing.assert_close(f["start"], torch.tensor([[0.5]]))
    torch.testing.assert_close(f["end"], torch.tensor([[0.09]]))
    torch.testing.assert_close(f["cls"], torch.tensor([[[0.3]]]))


def test_wrong_length_rejected():
    with pytest.raises(ValueError, match=r"\[B, C, 12\]"):
        _model()(torch.randn(1, 16, 13))


@pytest.mark.parametrize("T", [7, 13, 25])
def test_nested_unet_on_odd_lengths(T):
    """Pooling with ceil_mode and interpolation back to the exact length keep odd T aligned."""
    from bsnpp.model import ComplementaryBoundaryGenerator

    cbg = ComplementaryBoundaryGenerator(channels=6, width=4).eval()
    s, e, f = cbg(torch.randn(2, 6, T))
    assert s.shape == (2, T) and e.shape == (2, T) and f.shape == (2, 4, T)
    m = _model(tscale=T)
    out = m(torch.randn(1, 16, T))
    assert out["reg"].shape[-2:] == (T, T) and torch.isfinite(out["cls"]).all()


def _pam_reference(pam, x, mask):
    """The PRB's position attention as first written: every cell a key, invalid keys masked."""
    b, c, d, t = x.shape
    q = pam.q(x).flatten(2).transpose(1, 2).unsqueeze(1)
    k = pam.k(x).flatten(2).transpose(1, 2).unsqueeze(1)
    v = pam.v(x).flatten(2).transpose(1, 2).unsqueeze(1)
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask.flatten().view(1, 1, 1, -1),
                                                           scale=1.0)
    return pam.gamma * out.squeeze(1).transpose(1, 2).reshape(b, c, d, t) + x


@pytest.mark.parametrize("chunk_bytes", [256 << 20, 3 * 4 * 9 * 4])  # one chunk; chunks of 9 queries
def test_chunked_position_attention_equals_masked_full_attention(chunk_bytes):
    from bsnpp.model import PositionAttention

    torch.manual_seed(0)
    T, B, C = 9, 3, 16
    pam = PositionAttention(C, max_chunk_bytes=chunk_bytes)
    torch.nn.init.constant_(pam.gamma, 0.7)
    mask = torch.tensor(valid_map_mask(T, T))
    x = torch.randn(B, C, T, T, requires_grad=True)
    got = pam(x, mask)
    w = torch.randn_like(got)
    (got * w).sum().backward()
    g_got = [x.grad.clone()] + [p.grad.clone() for p in pam.parameters()]
    x.grad = None
    pam.zero_grad()
    ref = _pam_reference(pam, x, mask)
    (ref * w).sum().backward()
    g_ref = [x.grad] + [p.grad for p in pam.parameters()]
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    for a, b in zip(g_got, g_ref):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    if chunk_bytes < 1000:  # several chunks really ran, under checkpointing
        assert pam.max_chunk_bytes // (B * int(mask.sum()) * 4) < T * T
