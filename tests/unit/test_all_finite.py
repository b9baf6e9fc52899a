"""`all_finite`, checked before every checkpoint, flags exactly the tensors with a NaN or an infinity."""

from __future__ import annotations

import pytest
import torch

from mlgen.models.divergence import all_finite

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
