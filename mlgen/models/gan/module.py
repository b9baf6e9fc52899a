"""GAN family: DCGAN / MLP nets, BCE, hinge or WGAN-GP losses; conditioning, EMA and quality metrics
come from `GenerativeModule`.

Manual optimisation, written to be correct under DDP: each iteration the discriminator steps once
(on real data and detached fakes) and the generator steps once every `n_critic` iterations, on every
rank alike. `toggle_optimizer` freezes the other net's parameters during each backward, so every
backward reaches only one net's parameters; DDP must therefore be told to look for unused
parameters, which the class says with `ddp_find_unused_parameters` (the trainer builder reads it).
Lightning does not step LR schedulers under manual optimisation: `model.scheduler` (G) and
`model.d_scheduler` (D) are stepped once per epoch by `MLGenModule.on_train_epoch_end`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor, nn

from mlgen.config.checks import check_choice, check_int, check_number
from mlgen.models.base import check_optimizer_config, check_scheduler_config
from mlgen.models.gan.losses import (
    LOSSES,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
)
from mlgen.models.generative import GenerativeModule

Batch = tuple[Tensor, Tensor]


class GAN(GenerativeModule):
    """Generator and discriminator trained adversarially; samples come from the (EMA) generator.

    Args:
        generator, discriminator: net configs (`_target_` plus options); shape, classes, `latent_dim`
            and `conditional` are filled in.
        d_optimizer: discriminator optimizer config (`optimizer`, a base argument, is the generator's).
        d_scheduler: optional discriminator LR scheduler config (`scheduler` is the generator's); both
            are stepped once per epoch (see `MLGenModule.step_lr_schedulers`).
        latent_dim: size of the noise vector z ~ N(0, I).
        loss: `bce` (non-saturating), `hinge` or `wgan_gp`.
        gp_weight: weight of the gradient penalty (`wgan_gp` only).
        n_critic: discriminator steps per generator step.
        **kwargs: `GenerativeModule`'s arguments (`conditional`, `ema_decay`: EMA generator, `metrics`)
            and `MLGenModule`'s; conf/model/dcgan.yaml sets monitor null (the last checkpoint is kept)
            and ema_decay 0.999. `compile` and `channels_last` apply to G, D and the EMA generator.
    """

    ddp_find_unused_parameters = True  # each backward reaches one of the two nets (see the module docstring)
    manual_updates = True  # train_batch steps D and G itself (manual optimisation)
    sampling_nets = ("generator",)

    def __init__(
        self,
        generator: Mapping[str, Any],
        discriminator: Mapping[str, Any],
        d_optimizer: Mapping[str, Any],
        d_scheduler: Mapping[str, Any] | None = None,
        latent_dim: int = 100,
        loss: str = "bce",
        gp_weight: float = 10.0,
        n_critic: int = 1,
        **kwargs: Any,
    ) -> None:
        check_optimizer_config(d_optimizer, "model.d_optimizer")
        check_scheduler_config(d_scheduler, "model.d_scheduler")
        check_choice("model.loss", loss, LOSSES)
        check_int("model.latent_dim", latent_dim, 1, 100)
        check_int("model.n_critic", n_critic, 1, 1)
        check_number("model.gp_weight", gp_weight, 0.0, example=10.0)
        super().__init__(**kwargs)

    def build_nets(self) -> None:
        hp = self.hparams
        net_args = {"shape": self.shape, "num_classes": self.num_classes, "conditional": self.conditional}
        self.generator: nn.Module = self.build_net(hp.generator, "model.generator", latent_dim=hp.latent_dim, **net_args)
        self.discriminator: nn.Module = self.build_net(hp.discriminator, "model.discriminator", **net_args)

    def generate(self, n: int, labels: Tensor | None) -> Tensor:
        """Images in [-1, 1] from the (EMA) generator."""
        return self.sampling_net("generator")(self.noise(n, self.hparams.latent_dim), labels)

    # --- training ------------------------------------------------------------------------
    def configure_optimizers(self) -> list[dict[str, Any]]:
        hp = self.hparams
        return [
            self.optimizer_config(hp.optimizer, hp.get("scheduler"), self.generator.parameters()),
            self.optimizer_config(hp.d_optimizer, hp.d_scheduler, self.discriminator.parameters()),
        ]

    def train_batch(self, batch: Batch, batch_idx: int) -> None:
        x, y = batch
        labels = y if self.conditional else None
        opt_g, opt_d = self.optimizers()
        fake = self.generator(self.noise(len(x), self.hparams.latent_dim), labels)  # before any toggle, so the graph reaches G

        logs = self.discriminator_step(opt_d, lambda points: self.discriminator(points, labels), x, fake.detach())

        if (batch_idx + 1) % self.hparams.n_critic == 0:
            self.toggle_optimizer(opt_g)
            g_loss = generator_loss(self.hparams.loss, self.discriminator(fake, labels))
            self.generator_step(opt_g, g_loss)
            logs["train/g_loss"] = g_loss.detach()
        self.log_train_values(logs, len(x))

    def discriminator_step(self, opt_d: Any, critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """One discriminator step on `critic`'s scores of real and (detached) fake inputs, with the gradient
        penalty for `wgan_gp`; returns the values to log. CTGAN calls it with packed rows."""
        kind = self.hparams.loss
        self.toggle_optimizer(opt_d)
        d_loss = discriminator_loss(kind, critic(real), critic(fake))
        logs = {"train/d_loss": d_loss.detach()}
        if kind == "wgan_gp":
            gp = gradient_penalty(critic, real, fake)
            d_loss = d_loss + self.hparams.gp_weight * gp
            logs["train/gp"] = gp.detach()
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        self.untoggle_optimizer(opt_d)
        return logs

    def generator_step(self, opt_g: Any, g_loss: Tensor) -> None:
        """Step the generator on `g_loss` (computed after `toggle_optimizer(opt_g)`), then its EMA."""
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        opt_g.step()
        self.untoggle_optimizer(opt_g)
        self.update_ema()
