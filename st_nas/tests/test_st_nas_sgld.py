"""SGLD: τ = 0 is torch.optim.SGD bit for bit; the injected noise has std sqrt(2 η τ / N); only
parameters with a gradient move; the per-step generators are reproducible and distinct."""
import math

import pytest
import torch
from torch import nn

from st_nas.sgld import NOISE, PATH, SGLD, noise_std, step_generator, step_seed


def _pair():
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 3))
    b = nn.Sequential(nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 3))
    b.load_state_dict(a.state_dict())
    return a, b


@pytest.mark.parametrize("momentum,wd,nesterov", [(0.0, 0.0, False), (0.9, 4e-5, False), (0.9, 1e-3, True)])
def test_zero_temperature_is_sgd_bit_for_bit(momentum, wd, nesterov):
    a, b = _pair()
    opt_a = SGLD(a.parameters(), lr=0.1, temperature=0.0, dataset_size=100, momentum=momentum, weight_decay=wd,
                 nesterov=nesterov)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1, momentum=momentum, weight_decay=wd, nesterov=nesterov)
    for step in range(5):
        x = torch.randn(8, 7, generator=torch.Generator().manual_seed(step))
        for m, o in ((a, opt_a), (b, opt_b)):
            o.zero_grad()
            m(x).pow(2).mean().backward()
        opt_a.step(generator=step_generator(0, step, NOISE))
        opt_b.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_noise_std_is_sqrt_2_eta_tau_over_n():
    p = nn.Parameter(torch.zeros(1_000_000))
    lr, tau, n = 0.05, 2.0, 1000
    opt = SGLD([p], lr=lr, temperature=tau, dataset_size=n)
    p.grad = torch.zeros_like(p)  # no gradient step: what moves is the noise alone
    opt.step(generator=step_generator(3, 7, NOISE))
    want = math.sqrt(2 * lr * tau / n)
    assert noise_std(lr, tau, n) == pytest.approx(want)
    assert abs(p.detach().std().item() / want - 1) < 0.02
    assert abs(p.detach().mean().item()) < 3 * want / 1000


def test_noise_follows_the_scheduled_lr_and_the_gradient_step():
    p = nn.Parameter(torch.ones(200_000))
    opt = SGLD([p], lr=1.0, temperature=1.0, dataset_size=10)
    opt.param_groups[0]["lr"] = 0.001  # a schedule changes lr between steps
    p.grad = torch.full_like(p, 2.0)
    opt.step(generator=step_generator(0, 0, NOISE))
    delta = p.detach() - (1 - 0.001 * 2.0)
    assert abs(delta.std().item() / math.sqrt(2 * 0.001 / 10) - 1) < 0.02


def test_parameters_without_gradient_do_not_move():
    used, unused = nn.Parameter(torch.zeros(10)), nn.Parameter(torch.zeros(10))
    opt = SGLD([used, unused], lr=0.1, temperature=1.0, dataset_size=1)
    used.grad = torch.zeros(10)
    opt.step(generator=step_generator(0, 0, NOISE))
    assert used.abs().sum() > 0 and torch.equal(unused.detach(), torch.zeros(10))


def test_same_generator_same_noise_and_state_survives_a_checkpoint():
    outs = []
    for _ in range(2):
        p = nn.Parameter(torch.zeros(50))
        opt = SGLD([p], lr=0.1, temperature=1.0, dataset_size=1, momentum=0.9)
        p.grad = torch.ones(50)
        opt.step(generator=step_generator(5, 11, NOISE))
        outs.append(p.detach().clone())
        state = opt.state_dict()
    assert torch.equal(outs[0], outs[1])
    again = SGLD([nn.Parameter(torch.zeros(50))], lr=0.3, temperature=0.0, dataset_size=7)
    again.load_state_dict(state)
    assert again.param_groups[0]["temperature"] == 1.0 and again.param_groups[0]["dataset_size"] == 1


def test_step_streams_are_reproducible_and_distinct():
    assert step_seed(0, 5, PATH) == step_seed(0, 5, PATH)
    assert len({step_seed(0, s, k) for s in range(50) for k in (PATH, NOISE)} | {step_seed(1, 0, PATH)}) == 101
    a = torch.randn(4, generator=step_generator(0, 3, PATH))
    assert torch.equal(a, torch.randn(4, generator=step_generator(0, 3, PATH)))


def test_bad_settings():
    with pytest.raises(ValueError, match="temperature"):
        SGLD([nn.Parameter(torch.zeros(1))], lr=0.1, temperature=-1.0, dataset_size=1)
    with pytest.raises(ValueError, match="dataset_size"):
        SGLD([nn.Parameter(torch.zeros(1))], lr=0.1, temperature=1.0, dataset_size=0)
