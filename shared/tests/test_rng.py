"""RNG capture, per-rank restore and isolation."""
import random

import numpy as np
import torch

from shared import checkpoint as ckpt_lib
from shared import rng


def _draw():
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_rng_isolated_leaves_every_generator_where_it_was():
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    ref = _draw()
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    with rng.rng_isolated("cpu"):
        _draw(), _draw()
    assert _draw() == ref


def test_state_round_trip_through_a_checkpoint(tmp_path):
    model = torch.nn.Linear(2, 2)
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    state = ckpt_lib.training_state(model, epoch=0)
    assert isinstance(state["rng"], list) and len(state["rng"]) == 1  # one entry per rank
    ckpt_lib.save_checkpoint(state, tmp_path / "c.pt")
    ref = _draw()
    _draw()
    ckpt_lib.resume(tmp_path / "c.pt", model)
    assert _draw() == ref


def test_older_single_state_checkpoints_still_restore():
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    single = rng.rng_state()
    ref = _draw()
    rng.restore_states(single)
    assert _draw() == ref
