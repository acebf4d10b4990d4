"""AENet's heads per variant, the released model's names and shapes, weight loading, the loss
composition of every variant (Eq. 1-3 by hand) and the masked geometric loss."""
import pytest
import torch
import torch.nn.functional as F
import torchvision

from celeba_spoof.loss import ALL, DEFAULT_WEIGHTS, VARIANTS, AENetLoss, masked_mse, variant_terms
from celeba_spoof.model import AENet, load_official

# the released intra_dataset_code/models.py heads: name -> weight shape
OFFICIAL_HEADS = {"fc_live_attribute.weight": (40, 512), "fc_attack.weight": (11, 512), "fc_light.weight": (5, 512),
                  "fc_live.weight": (2, 512), "depth_final.weight": (1, 512, 3, 3), "reflect_final.weight": (3, 512, 3, 3)}


def test_released_layout_names_shapes_and_outputs():
    m = AENet()
    sd = m.state_dict()
    for k, shape in OFFICIAL_HEADS.items():
        assert tuple(sd[k].shape) == shape, k
    assert "depth_final.bias" not in sd and "reflect_final.bias" not in sd
    trunk = {k: v.shape for k, v in torchvision.models.resnet18().state_dict().items() if not k.startswith("fc.")}
    assert {k: sd[k].shape for k in trunk} == trunk  # torchvision / released trunk names
    assert sum(p.numel() for p in m.parameters()) * 4 / 2**20 == pytest.approx(42.7, abs=0.2)  # "42.7 MB"
    out = m.eval()(torch.rand(2, 3, 224, 224))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "live": (2, 2), "attribute": (2, 40), "attack": (2, 11), "light": (2, 5),
        "depth": (2, 1, 14, 14), "reflect": (2, 3, 14, 14)}
    assert 0 <= out["depth"].min() and out["reflect"].max() <= 1


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_variant_builds_its_heads_and_every_parameter_learns(variant):
    terms = variant_terms(variant)
    m = AENet(terms=terms, width=8)
    crit = AENetLoss(terms)
    out = m(torch.rand(3, 3, 64, 64))
    expect = {"C": "live", "Sf": "attribute", "Ss": "attack", "Si": "light", "Gd": "depth", "Gr": "reflect"}
    assert set(out) == {expect[t] for t in terms}
    batch = _batch(3)
    losses = crit(out, batch)
    assert set(losses) == set(terms) | {"total"}
    losses["total"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    p = AENet.spoof_prob(out)
    assert p.shape == (3,) and ((p >= 0) & (p <= 1)).all()


def test_environment_head_is_optional():
    assert "Se" not in variant_terms("CSG") and variant_terms("CSG", env_head=True)[-1] == "Se"
    m = AENet(terms=variant_terms("C", env_head=True), width=8)
    assert m(torch.rand(2, 3, 32, 32))["env"].shape == (2, 3)
    with pytest.raises(ValueError):
        AENet(terms=("Gd",))
    with pytest.raises(ValueError):
        variant_terms("CSGX")


def _batch(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"live": torch.randint(0, 2, (n,), generator=g), "attribute": torch.randint(0, 2, (n, 40), generator=g).float(),
            "attack": torch.randint(0, 11, (n,), generator=g), "light": torch.randint(0, 5, (n,), generator=g),
            "env": torch.randint(0, 3, (n,), generator=g), "depth": torch.rand(n, 1, 14, 14, generator=g),
            "reflect": torch.rand(n, 3, 14, 14, generator=g), "depth_mask": torch.ones(n), "reflect_mask": torch.ones(n)}


def _outputs(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {"live": torch.randn(n, 2, generator=g), "attribute": torch.randn(n, 40, generator=g),
            "attack": torch.randn(n, 11, generator=g), "light": torch.randn(n, 5, generator=g),
            "env": torch.randn(n, 3, generator=g), "depth": torch.rand(n, 1, 14, 14, generator=g),
            "reflect": torch.rand(n, 3, 14, 14, generator=g)}


def test_default_weights_are_the_papers():
    assert DEFAULT_WEIGHTS == {"C": 1.0, "Sf": 1.0, "Ss": 0.1, "Si": 0.01, "Se": 0.01, "Gd": 0.1, "Gr": 0.1}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_loss_composition_of_every_variant(variant):
    out, b = _outputs(5), _batch(5)
    term = {"C": F.cross_entropy(out["live"], b["live"]),
            "Sf": F.binary_cross_entropy_with_logits(out["attribute"], b["attribute"]),
            "Ss": F.cross_entropy(out["attack"], b["attack"]),
            "Si": F.cross_entropy(out["light"], b["light"]),
            "Gd": ((out["depth"] - b["depth"]) ** 2).mean(),
            "Gr": ((out["reflect"] - b["reflect"]) ** 2).mean()}
    lam = {"C": 1.0, "Sf": 1.0, "Ss": 0.1, "Si": 0.01, "Gd": 0.1, "Gr": 0.1}
    expected = {"C": ["C"], "S": ["Sf", "Ss", "Si"], "CS": ["C", "Sf", "Ss", "Si"], "CG": ["C", "Gd", "Gr"],
                "CSG": list(ALL)}
    expected.update({f"CSG-{t}": [x for x in ALL if x != t] for t in ("Sf", "Ss", "Si", "Gd", "Gr")})
    losses = AENetLoss(variant_terms(variant))(out, b)
    assert sorted(k for k in losses if k != "total") == sorted(expected[variant])
    total = sum(lam[t] * term[t] for t in expected[variant])
    torch.testing.assert_close(losses["total"], total)
    for t in expected[variant]:
        torch.testing.assert_close(losses[t], term[t])
    # custom weights flow through
    w = AENetLoss(variant_terms(variant), {t: 2.0 for t in lam})(out, b)["total"]
    torch.testing.assert_close(w, 2 * sum(term[t] for t in expected[variant]))


def test_masked_geometric_loss_never_trains_unknown_targets():
    pred = torch.rand(4, 1, 14, 14, requires_grad=True)
    target = torch.rand(4, 1, 14, 14)
    mask = torch.tensor([1.0, 0.0, 1.0, 0.0])
    loss = masked_mse(pred, target, mask)
    per = ((pred - target) ** 2).flatten(1).mean(1)
    torch.testing.assert_close(loss, (per[0] + per[2]) / 2)
    loss.backward()
    assert pred.grad[1].abs().sum() == 0 and pred.grad[3].abs().sum() == 0 and pred.grad[0].abs().sum() > 0
    # no sample with a target: zero, still differentiable (DDP sees every head used)
    pred.grad = None
    zero = masked_mse(pred, target, torch.zeros(4))
    assert zero.item() == 0.0
    zero.backward()
    assert pred.grad is not None and pred.grad.abs().sum() == 0


def test_criterion_masks_geometry_and_skips_unknown_labels():
    out, b = _outputs(4), _batch(4)
    b["depth_mask"] = torch.tensor([1.0, 0.0, 0.0, 0.0])
    b["attack"][2:] = -1          # unknown spoof types (txt lists)
    b["attribute"][3] = -1
    losses = AENetLoss(ALL)(out, b)
    torch.testing.assert_close(losses["Gd"], ((out["depth"][0] - b["depth"][0]) ** 2).mean())
    torch.testing.assert_close(losses["Ss"], F.cross_entropy(out["attack"][:2], b["attack"][:2]))
    torch.testing.assert_close(losses["Sf"], F.binary_cross_entropy_with_logits(out["attribute"][:3], b["attribute"][:3]))


def test_spoof_score_without_C_is_one_minus_p_live_of_the_type_head():
    out = {"attack": torch.tensor([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]])}
    p = AENet.spoof_prob(out)
    torch.testing.assert_close(p, 1 - torch.softmax(out["attack"], 1)[:, 0])
    assert p[0] < 0.5 < p[1]


def test_imagenet_and_released_weights_load(tmp_path):
    ref = torchvision.models.resnet18()
    torch.save(ref.state_dict(), tmp_path / "resnet18.pth")
    m = AENet(terms=("C",))
    m.load_imagenet(str(tmp_path / "resnet18.pth"))
    torch.testing.assert_close(m.layer4[1].conv2.weight, ref.layer4[1].conv2.weight)
    with pytest.raises(ValueError, match="missing"):
        AENet(terms=("C",), width=32).load_imagenet(str(tmp_path / "resnet18.pth"))
    with pytest.raises(FileNotFoundError):
        m.load_imagenet(str(tmp_path / "nope.pth"))
    # the released checkpoint: {"state_dict": {"module.<name>": tensor}} from DataParallel
    src = AENet()
    torch.save({"state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}, "epoch": 3}, tmp_path / "ckpt_iter.pth.tar")
    loaded, report = load_official(tmp_path / "ckpt_iter.pth.tar")
    x = torch.rand(1, 3, 224, 224)
    torch.testing.assert_close(loaded.eval()(x)["live"], src.eval()(x)["live"])
    assert len(report["loaded"]) == len(src.state_dict()) and not report["missing"] and not report["unexpected"]


def test_a_released_checkpoint_that_differs_loads_the_rest_and_names_the_differences(tmp_path):
    src = AENet()
    state = {f"module.{k}": v for k, v in src.state_dict().items() if k != "fc_light.bias"}
    state["module.fc_env.weight"] = torch.zeros(3, 512)  # a head the model does not have
    state["module.fc_attack.weight"] = torch.zeros(10, 512)  # another shape
    torch.save({"state_dict": state}, tmp_path / "ckpt_iter.pth.tar")
    model, report = load_official(tmp_path / "ckpt_iter.pth.tar")
    assert report["missing"] == ["fc_light.bias"] and report["unexpected"] == ["fc_env.weight"]
    assert report["mismatched"] == {"fc_attack.weight": [[10, 512], [11, 512]]}
    torch.testing.assert_close(model.layer4[1].conv2.weight, src.layer4[1].conv2.weight)  # the rest is loaded
    torch.testing.assert_close(model.fc_live.weight, src.fc_live.weight)
    with pytest.raises(KeyError, match=r"fc_light\.bias.*fc_env\.weight.*fc_attack\.weight"):
        load_official(tmp_path / "ckpt_iter.pth.tar", strict=True)
