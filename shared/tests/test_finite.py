import math

import pytest
import torch

from shared.finite import check_finite


def test_finite_losses_pass():
    check_finite({"a": torch.tensor(1.0), "b": 2.0}, "step 1")
    check_finite({"a": torch.tensor(1.0)}, "step 1", total=torch.tensor(3.0))


def test_names_the_bad_term_and_where():
    with pytest.raises(FloatingPointError, match=r"at epoch 2, iteration 7: terms \['b'\]"):
        check_finite({"a": torch.tensor(1.0), "b": torch.tensor(math.nan)}, "epoch 2, iteration 7")
    with pytest.raises(FloatingPointError, match=r"terms \['c'\]"):
        check_finite({"a": 1.0, "c": math.inf}, "x", total=torch.tensor(math.inf))


def test_total_only():
    # every term finite, the total overflowed: the message says so
    with pytest.raises(FloatingPointError, match=r"terms \['total'\]"):
        check_finite({"a": torch.tensor(1.0)}, "x", total=torch.tensor(math.nan))
