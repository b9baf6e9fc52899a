"""`all_finite`, checked before every checkpoint, flags exactly the tensors with a NaN or an infinity;
`first_non_finite`, checked on the training values, names the first such value."""

from __future__ import annotations

import warnings

import pytest
import torch

from mlgen.models.divergence import all_finite, first_non_finite

BIG = torch.finfo(torch.float32).max


@pytest.mark.parametrize(("bad", "expected"), [
    (None, True),
    (float("nan"), False),
    (float("inf"), False),
    (-float("inf"), False),
])
def test_one_bad_element_anywhere_is_found(bad, expected):
    tensors = [torch.randn(400, 784), torch.randn(400), torch.arange(5)]  # an integer tensor is skipped
    if bad is not None:
        tensors[0][123, 456] = bad
    assert all_finite(tensors) is expected


def test_largest_finite_values_are_finite_in_every_precision():
    """Sums that would overflow float32 (a million elements of float32's largest, of both signs) stay finite."""
    huge = torch.full((1000, 1000), BIG)
    bf16 = torch.full((1000, 1000), torch.finfo(torch.bfloat16).max, dtype=torch.bfloat16)
    fp16 = torch.full((1000, 1000), torch.finfo(torch.float16).max, dtype=torch.float16)
    assert all_finite([huge, -huge, bf16, fp16])
    assert not all_finite([huge, torch.tensor([float("inf"), -float("inf")])])  # inf - inf is still caught
    assert all_finite([])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("kind", ["python float", "0-d tensor", "1-element tensor", "bf16 scalar", "vector"])
def test_the_first_non_finite_training_value_is_named(bad, kind):
    make = {"python float": float, "0-d tensor": torch.tensor, "1-element tensor": lambda v: torch.tensor([v]),
            "bf16 scalar": lambda v: torch.tensor(v, dtype=torch.bfloat16), "vector": lambda v: torch.tensor([1.0, v, 2.0])}[kind]
    values = {"train/acc": make(0.5) if kind != "vector" else torch.tensor([0.5, 0.25]), "train/recon": make(bad),
              "train/kl": make(bad), "train/beta": 1.0}
    assert first_non_finite(values) == "train/recon"
    values["train/recon"] = values["train/kl"] = make(BIG) if kind not in ("bf16 scalar", "vector") else make(3.0)
    assert first_non_finite(values) is None
    assert first_non_finite({}) is None


def test_a_loss_still_in_the_graph_is_read_without_a_warning():
    """Families hand their loss to the check before `backward`, so it requires grad; reading it must not
    print torch's "Converting a tensor with requires_grad=True to a scalar" warning into every run's log."""
    weight = torch.ones(3, requires_grad=True)
    values = {"train/loss": (weight * 2).sum(), "train/kl": (weight * float("nan")).sum()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert first_non_finite(values) == "train/kl"
