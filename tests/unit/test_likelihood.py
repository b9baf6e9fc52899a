import math

import pytest
import torch

from mlgen.metrics.likelihood import (
    iwae_log_likelihood,
    iwae_nll,
    kl_to_standard_normal,
    log_normal_diag,
    log_standard_normal,
)


def test_kl_matches_hand_computed_value():
    # 0.5 * [(1 + 1 - 1 - 0) + (0 + 2 - 1 - ln 2)] = 1 - ln(2) / 2
    kl = kl_to_standard_normal(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(2.0)]]))
    assert kl.shape == (1,)
    assert kl.item() == pytest.approx(1 - math.log(2) / 2)


def test_kl_is_zero_for_the_prior_itself():
    assert kl_to_standard_normal(torch.zeros(3, 5), torch.zeros(3, 5)).abs().max() == 0


def test_gaussian_log_densities_match_hand_computed_values():
    z = torch.tensor([[1.0, -1.0]])
    # log N(z; 0, I) = -0.5 * (1 + 1) - log(2 pi)
    assert log_standard_normal(z).item() == pytest.approx(-1 - math.log(2 * math.pi))
    # mean 1, variance 4 in the first dim: -0.5 * (0 + ln 4 + ln 2pi); second dim as above: -0.5 - 0.5 ln 2pi
    value = log_normal_diag(z, torch.tensor([[1.0, 0.0]]), torch.tensor([[math.log(4.0), 0.0]]))
    assert value.item() == pytest.approx(-0.5 * math.log(4) - 0.5 - math.log(2 * math.pi))


def test_iwae_log_likelihood_is_log_mean_of_weights():
    log_w = torch.log(torch.tensor([[1.0, 2.0], [3.0, 2.0]]))
    assert torch.allclose(iwae_log_likelihood(log_w), torch.log(torch.tensor([2.0, 2.0])))


def test_iwae_nll_draws_k_samples_in_chunks():
    calls = []

    def log_weights(m):
        calls.append(m)
        return torch.arange(len(calls) * 10, len(calls) * 10 + m, dtype=torch.float64)[:, None].expand(m, 3)

    nll = iwae_nll(log_weights, k=10, chunk=4)
    assert calls == [4, 4, 2]
    expected = -(torch.logsumexp(torch.tensor([10, 11, 12, 13, 20, 21, 22, 23, 30, 31], dtype=torch.float64), 0) - math.log(10))
    assert torch.allclose(nll, expected.expand(3))
