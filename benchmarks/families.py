"""What the benchmark trains for each model family (all with MLP nets, where overhead is most visible): its config and the plain-PyTorch step that does
the same work as the LightningModule's training step (same nets, loss and optimizer)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from mlgen.utils.instantiate import instantiate_model

Step = Callable[[torch.Tensor, torch.Tensor], None]


@dataclass(frozen=True)
class Family:
    overrides: tuple[str, ...]
    plain_step: Callable[[Any, torch.device], Step]


def classifier_step(cfg: Any, device: torch.device) -> Step:
    model = instantiate_model(cfg.model).to(device).train()
    optimizer = model.make_optimizer(model.hparams.optimizer, model.parameters())

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        loss = F.cross_entropy(model.net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def vae_step(cfg: Any, device: torch.device) -> Step:
    model = instantiate_model(cfg.model).to(device).train()
    optimizer = model.make_optimizer(model.hparams.optimizer, model.parameters())

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        recon, kl = model.elbo_terms(x, y)
        loss = (recon + model.hparams.beta * kl).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def gan_step(cfg: Any, device: torch.device) -> Step:
    """One discriminator and one generator update, plus the EMA update, as `GAN.training_step` does."""
    from mlgen.models.gan_losses import discriminator_loss, generator_loss

    model = instantiate_model(cfg.model).to(device).train()
    opt_g, opt_d = model.configure_optimizers()
    g, d, kind = model.generator, model.discriminator, model.hparams.loss

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        fake = g(torch.randn(len(x), model.hparams.latent_dim, device=x.device), None)
        d.requires_grad_(True)
        d_loss = discriminator_loss(kind, d(x, None), d(fake.detach(), None))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        d.requires_grad_(False)
        g_loss = generator_loss(kind, d(fake, None))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        if model.generator_ema is not None:
            model.generator_ema.update_parameters(g)

    return step


FAMILIES: dict[str, Family] = {
    "classifier": Family(("model=classifier",), classifier_step),
    "vae": Family(("model=vae", "data.binarize=true"), vae_step),
    # the MLP pair: like the MLP classifier and VAE, small enough per step that framework overhead shows
    "gan": Family(("model=dcgan", "model/gan_nets=mlp"), gan_step),
}
