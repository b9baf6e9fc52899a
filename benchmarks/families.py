"""What the benchmark trains for each model family (all with MLP nets, where overhead is most visible): its config and the plain-PyTorch step that does
the same work as the LightningModule's training step (same nets, loss and optimizer)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from mlgen.config.instantiate import instantiate_model

Step = Callable[[torch.Tensor, torch.Tensor], None]
Loss = Callable[[Any, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Family:
    """Either `loss(model, x, y)` (one-optimizer families: it drives both the plain step and the
    bare-Lightning bound) or `step(cfg, device)`, a plain step of its own (the GAN's two updates)."""

    overrides: tuple[str, ...]
    loss: Loss | None = None
    step: Callable[[Any, torch.device], Step] | None = None

    def plain_step(self, cfg: Any, device: torch.device) -> Step:
        return self.step(cfg, device) if self.step is not None else _loss_step(self.loss, cfg, device)


def _update(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _loss_step(loss: Loss, cfg: Any, device: torch.device) -> Step:
    """A one-optimizer family: `loss(model, x, y)` and one update, as its `training_step` does."""
    model = instantiate_model(cfg.model).to(device).train()
    optimizer = model.make_optimizer(model.hparams.optimizer, model.parameters())
    return lambda x, y: _update(optimizer, loss(model, x, y))


def classifier_loss(model: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model.net(x), y)


def vae_loss(model: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    recon, kl = model.elbo_terms(x, y)
    return (recon + model.hparams.beta * kl).mean()


def gan_step(cfg: Any, device: torch.device) -> Step:
    """One discriminator and one generator update, plus the EMA update, as `GAN.training_step` does."""
    from mlgen.models.gan.losses import discriminator_loss, generator_loss

    model = instantiate_model(cfg.model).to(device).train()
    g, d, kind = model.generator, model.discriminator, model.hparams.loss
    opt_g = model.make_optimizer(model.hparams.optimizer, g.parameters())  # the optimizers alone, no LR schedulers
    opt_d = model.make_optimizer(model.hparams.d_optimizer, d.parameters())

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        fake = g(torch.randn(len(x), model.hparams.latent_dim, device=x.device), None)
        d.requires_grad_(True)
        _update(opt_d, discriminator_loss(kind, d(x, None), d(fake.detach(), None)))
        d.requires_grad_(False)
        _update(opt_g, generator_loss(kind, d(fake, None)))
        if model.generator_ema is not None:
            model.generator_ema.update_parameters(g)

    return step


FAMILIES: dict[str, Family] = {
    "classifier": Family(("model=classifier",), loss=classifier_loss),
    "vae": Family(("model=vae", "data.binarize=true"), loss=vae_loss),
    # the MLP pair: like the MLP classifier and VAE, small enough per step that framework overhead shows
    "gan": Family(("model=dcgan", "model/gan_nets=mlp"), step=gan_step),
}
