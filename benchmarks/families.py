"""What the benchmark trains for each model family (all with MLP nets, where overhead is most visible): its config, the plain-PyTorch step that does
the same work as the LightningModule's training step (same nets, loss and optimizer), and the plain validation work of one batch."""

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
    bare-Lightning bound) or `step(model, device)`, a plain step of its own (the GAN's two updates).
    `evaluate(model, x, y)` is what the family's validation step computes on one batch (None: nothing,
    like a GAN without sample-quality metrics)."""

    overrides: tuple[str, ...]
    loss: Loss | None = None
    step: Callable[[Any, torch.device], Step] | None = None
    evaluate: Callable[[Any, torch.Tensor, torch.Tensor], Any] | None = None

    def plain_model_and_step(self, cfg: Any, device: torch.device) -> tuple[Any, Step]:
        """The family's module (in training mode, on `device`) and a plain training step updating it."""
        model = instantiate_model(cfg.model).to(device).train()
        model.configure_model()  # model.compile / model.channels_last, as Lightning applies them to the mlgen arms
        return model, self.step(model, device) if self.step is not None else _loss_step(self.loss, model)

    def plain_step(self, cfg: Any, device: torch.device) -> Step:
        return self.plain_model_and_step(cfg, device)[1]


def _update(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _loss_step(loss: Loss, model: Any) -> Step:
    """A one-optimizer family: `loss(model, x, y)` and one update, as its `training_step` does."""
    optimizer = model.make_optimizer(model.hparams.optimizer, model.parameters())
    return lambda x, y: _update(optimizer, loss(model, x, y))


def classifier_loss(model: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model.net(x), y)


def classifier_evaluate(model: Any, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Validation loss and accuracy of one batch (what a plain loop reports)."""
    logits = model.net(x)
    return F.cross_entropy(logits, y).item(), (logits.argmax(dim=1) == y).float().mean().item()


def vae_loss(model: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    recon, kl = model.elbo_terms(x, y)
    return (recon + model.hparams.beta * kl).mean()


def vae_evaluate(model: Any, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float, float]:
    """Validation ELBO, reconstruction and KL terms of one batch."""
    recon, kl = model.elbo_terms(x, y)
    return -(recon + kl).mean().item(), recon.mean().item(), kl.mean().item()


def gan_step(model: Any, device: torch.device) -> Step:
    """One discriminator and one generator update, plus the EMA update, as `GAN.training_step` does."""
    from mlgen.models.gan.losses import discriminator_loss, generator_loss

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
    "classifier": Family(("model=classifier",), loss=classifier_loss, evaluate=classifier_evaluate),
    # opt-in (not in the default CPU run): the conv net that channels-last and compile are for (benchmarks/gpu.sh)
    "classifier_cnn": Family(("model=classifier_cnn",), loss=classifier_loss, evaluate=classifier_evaluate),
    "vae": Family(("model=vae", "data.binarize=true"), loss=vae_loss, evaluate=vae_evaluate),
    # the MLP pair: like the MLP classifier and VAE, small enough per step that framework overhead shows
    "gan": Family(("model=dcgan", "model/gan_nets=mlp"), step=gan_step),
}
