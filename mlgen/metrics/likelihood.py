"""Likelihood bounds of latent-variable models, in nats per example.

The ELBO terms use closed forms where they exist (KL of a diagonal Gaussian to N(0, I)); the
importance-weighted bound (IWAE, Burda et al. 2016) is computed from log-weights that the model
provides, in chunks of samples so that memory stays bounded for any `k`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor


def kl_to_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per example: 0.5 * sum(mu^2 + var - 1 - logvar)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)


def log_standard_normal(z: Tensor) -> Tensor:
    """log N(z; 0, I), summed over the last dimension."""
    return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)


def log_normal_diag(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over the last dimension."""
    return -0.5 * ((z - mu).pow(2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)


def iwae_log_likelihood(log_weights: Tensor) -> Tensor:
    """IWAE estimate of log p(x) from `[k, B]` log-weights: logsumexp_k - log k, per example.

    With k=1 it is a one-sample ELBO; its expectation rises towards log p(x) as k grows."""
    return torch.logsumexp(log_weights, dim=0) - math.log(log_weights.shape[0])


def iwae_nll(log_weights_fn: Callable[[int], Tensor], k: int, chunk: int) -> Tensor:
    """-log p(x) estimate per example from `k` importance samples, drawn `chunk` at a time.

    `log_weights_fn(m)` returns `[m, B]` log-weights log p(x, z) - log q(z | x) for `m` fresh
    samples; only `[k, B]` scalars are kept, so memory is bounded by one chunk of decoder passes.
    """
    sizes = [min(chunk, k - start) for start in range(0, k, chunk)]
    return -iwae_log_likelihood(torch.cat([log_weights_fn(m) for m in sizes]))
