"""GAN objectives on discriminator scores (logits or critic values), plus the WGAN-GP penalty.

Each loss is a few lines of tensor algebra that no installed library provides as such, so they
are written here; the conventions follow the papers: non-saturating BCE (Goodfellow et al. 2014),
hinge (Lim & Ye 2017; Miyato et al. 2018), WGAN-GP (Gulrajani et al. 2017).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from mlgen.distributed.noise import global_batch_rows

LOSSES = ("bce", "hinge", "wgan_gp")


def discriminator_loss(kind: str, real: Tensor, fake: Tensor) -> Tensor:
    """Loss the discriminator minimises given its scores on real and generated samples."""
    if kind == "bce":  # -log D(x) - log(1 - D(G(z))), with D = sigmoid(score)
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    if kind == "wgan_gp":  # negative Wasserstein estimate; the penalty is added by the caller
        return fake.mean() - real.mean()
    raise ValueError(f"unknown GAN loss {kind!r}; expected one of {LOSSES}")


def generator_loss(kind: str, fake: Tensor) -> Tensor:
    """Loss the generator minimises given the discriminator's scores on its samples."""
    if kind == "bce":  # non-saturating: -log D(G(z))
        return F.softplus(-fake).mean()
    if kind in ("hinge", "wgan_gp"):
        return -fake.mean()
    raise ValueError(f"unknown GAN loss {kind!r}; expected one of {LOSSES}")


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """E[(||grad_x critic(x)||_2 - 1)^2] at random points x on lines between real and fake samples.

    Differentiable w.r.t. the critic's parameters (`create_graph=True`); gradients are taken w.r.t.
    the inputs only, which DDP allows (its hooks sit on parameter gradients). The mixing weights follow
    the per-rank noise convention (`global_batch_rows`), so N ranks penalise as one process would.
    """
    ones = [1] * (real.dim() - 1)
    alpha = global_batch_rows(lambda m: torch.rand(m, *ones, device=real.device, dtype=real.dtype), real.shape[0])
    points = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(points).sum(), points, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1.0).pow(2).mean()
