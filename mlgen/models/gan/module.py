"""GAN family: DCGAN / MLP nets, BCE, hinge or WGAN-GP losses, conditional variants, EMA generator.

Manual optimisation, written to be correct under DDP: each iteration the discriminator steps once
(on real data and detached fakes) and the generator steps once every `n_critic` iterations, on every
rank alike. `toggle_optimizer` freezes the other net's parameters during each backward, so every
backward reaches only one net's parameters; DDP must therefore be told to look for unused
parameters, which the class says with `ddp_find_unused_parameters` (the trainer builder reads it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from mlgen.compat import attached_trainer
from mlgen.errors import ConfigError
from mlgen.metrics.fid import SampleQuality, build_sample_quality
from mlgen.models.base import MLGenModule, check_optimizer_config
from mlgen.models.gan.losses import (
    LOSSES,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
)
from mlgen.models.generative import cycle_labels

log = logging.getLogger(__name__)
Batch = tuple[Tensor, Tensor]
QUALITY_PREFIX = "quality."


class GAN(MLGenModule):
    """Generator and discriminator trained adversarially.

    Args:
        generator, discriminator: net configs (`_target_` plus options); shape, classes, `latent_dim`
            and `conditional` are filled in.
        latent_dim: size of the noise vector z ~ N(0, I).
        loss: `bce` (non-saturating), `hinge` or `wgan_gp`.
        gp_weight: weight of the gradient penalty (`wgan_gp` only).
        n_critic: discriminator steps per generator step.
        conditional: generate and discriminate given the label.
        ema_decay: decay of the exponential moving average of the generator used by `sample()` and
            evaluation; null or 0 disables it.
        optimizer: generator optimizer config; d_optimizer: discriminator optimizer config.
        metrics: `features` (classifier | inception), `feature_ckpt`, `inception_weights`,
            `kid_subsets`, `kid_subset_size` (see `mlgen.metrics.fid`).
        monitor, monitor_mode: see `MLGenModule`; null monitor keeps the last checkpoint.
        compile, channels_last: see `MLGenModule`; they apply to G, D and the EMA generator.
    """

    ddp_find_unused_parameters = True  # each backward reaches one of the two nets (see the module docstring)

    def __init__(
        self,
        shape: Sequence[int],
        num_classes: int,
        generator: Mapping[str, Any],
        discriminator: Mapping[str, Any],
        optimizer: Mapping[str, Any],
        d_optimizer: Mapping[str, Any],
        latent_dim: int = 100,
        loss: str = "bce",
        gp_weight: float = 10.0,
        n_critic: int = 1,
        conditional: bool = False,
        ema_decay: float | None = 0.999,
        metrics: Mapping[str, Any] | None = None,
        monitor: str | None = None,
        monitor_mode: str = "min",
        compile: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__(shape, num_classes, optimizer, None, monitor, monitor_mode, compile, channels_last)
        self.save_hyperparameters(logger=False)  # the run logs the whole composed config instead
        check_optimizer_config(d_optimizer, "model.d_optimizer")
        if loss not in LOSSES:
            raise ConfigError(f"model.loss={loss!r} is unknown. Fix: use one of {list(LOSSES)}.")
        for key, value in (("latent_dim", latent_dim), ("n_critic", n_critic)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"model.{key}={value!r} is invalid: it must be an integer >= 1. Fix: set model.{key} to a positive integer.")
        if gp_weight < 0:
            raise ConfigError(f"model.gp_weight={gp_weight!r} is invalid: it must be >= 0. Fix: e.g. model.gp_weight=10.")
        if ema_decay is not None and not 0 <= ema_decay < 1:
            raise ConfigError(f"model.ema_decay={ema_decay!r} is invalid: it must lie in [0, 1). Fix: e.g. model.ema_decay=0.999, or null to disable.")
        metrics = dict(metrics or {})
        if monitor and monitor.split("/")[-1] in ("fid_clf", "kid_clf", "label_agreement") and not metrics.get("feature_ckpt"):
            raise ConfigError(
                f"model.monitor={monitor} needs a classifier to compute it, but model.metrics.feature_ckpt is not set. "
                "Fix: train a classifier on the same data (e.g. `mlgen-train experiment=mnist_cnn`) and pass "
                "model.metrics.feature_ckpt=<its run dir>/checkpoints/last.ckpt, or set model.monitor=null."
            )
        self.automatic_optimization = False
        self.conditional = conditional
        net_args = {"shape": self.shape, "num_classes": self.num_classes, "conditional": conditional}
        self.generator: nn.Module = self.build_net(generator, "model.generator", latent_dim=latent_dim, **net_args)
        self.discriminator: nn.Module = self.build_net(discriminator, "model.discriminator", **net_args)
        self.generator_ema: AveragedModel | None = None
        if ema_decay:
            # torch's own EMA; buffers (batch-norm statistics) are averaged too
            self.generator_ema = AveragedModel(self.generator, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True)
            self.generator_ema.requires_grad_(False)
        self.quality: SampleQuality | None = None  # built in `setup`, only for runs that evaluate

    # --- sampling ------------------------------------------------------------------------
    @property
    def eval_generator(self) -> nn.Module:
        """The generator used for samples and evaluation: the EMA copy when enabled."""
        return self.generator_ema.module if self.generator_ema is not None else self.generator

    @torch.no_grad()
    def sample(self, n: int, labels: Tensor | None = None) -> Tensor:
        """`n` images in [-1, 1] from the (EMA) generator in eval mode. A conditional GAN without
        `labels` draws the classes in turn (0, 1, ..., 0, 1, ...)."""
        if labels is not None and not self.conditional:
            raise ValueError("labels were given to an unconditional GAN; train with model.conditional=true (model=cgan).")
        if self.conditional and labels is None:
            labels = cycle_labels(n, self.num_classes)
        labels = None if labels is None else labels.to(self.device)
        with eval_mode(self.eval_generator) as g:
            return g(self.noise(n), labels)

    def noise(self, n: int) -> Tensor:
        """`n` draws of z ~ N(0, I). Under DDP every rank draws the same `world_size * n` values (the
        ranks are seeded alike and consume their RNGs in step) and keeps its own slice, so no two ranks
        share noise and the RNG states, hence checkpoints and resumes, stay identical across ranks."""
        trainer = attached_trainer(self)
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        z = torch.randn(world * n, self.hparams.latent_dim, device=self.device)
        return z[rank * n : (rank + 1) * n]

    def nets(self) -> list[nn.Module]:
        """G, D and the EMA generator; not the frozen feature extractor of the quality metrics."""
        return [self.generator, self.discriminator] + ([self.generator_ema.module] if self.generator_ema is not None else [])

    # --- training ------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self.quality is None and stage in ("fit", "validate", "test"):
            self.quality = build_sample_quality(self.hparams.metrics or {}, self.shape, self.num_classes, self.conditional)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [
            self.make_optimizer(self.hparams.optimizer, self.generator.parameters()),
            self.make_optimizer(self.hparams.d_optimizer, self.discriminator.parameters()),
        ]

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        x, y = batch
        labels = y if self.conditional else None
        opt_g, opt_d = self.optimizers()
        kind = self.hparams.loss
        fake = self.generator(self.noise(len(x)), labels)  # before any toggle, so the graph reaches G

        self.toggle_optimizer(opt_d)
        d_loss = discriminator_loss(kind, self.discriminator(x, labels), self.discriminator(fake.detach(), labels))
        logs = {"train/d_loss": d_loss.detach()}
        if kind == "wgan_gp":
            gp = gradient_penalty(lambda points: self.discriminator(points, labels), x, fake.detach())
            d_loss = d_loss + self.hparams.gp_weight * gp
            logs["train/gp"] = gp.detach()
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        self.untoggle_optimizer(opt_d)

        if (batch_idx + 1) % self.hparams.n_critic == 0:
            self.toggle_optimizer(opt_g)
            g_loss = generator_loss(kind, self.discriminator(fake, labels))
            opt_g.zero_grad()
            self.manual_backward(g_loss)
            opt_g.step()
            self.untoggle_optimizer(opt_g)
            if self.generator_ema is not None:
                self.generator_ema.update_parameters(self.generator)
            logs["train/g_loss"] = g_loss.detach()
        self.log_train_values(logs, len(x))

    # --- evaluation ----------------------------------------------------------------------
    def _evaluate(self, batch: Batch) -> None:
        if self.quality is None:
            return
        x, y = batch
        labels = y if self.conditional else None
        self.quality.update(x, real=True)
        self.quality.update(self.sample(len(x), labels), real=False, labels=labels)

    def _log_quality(self, split: str) -> None:
        if self.quality is None or self.trainer.sanity_checking:
            if self.quality is not None:
                self.quality.reset()
            return
        # compute() has already reduced over DDP ranks, so every rank logs the same value
        self.log_dict({f"{split}/{k}": v for k, v in self.quality.compute().items()}, prog_bar=True)
        self.quality.reset()

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch)

    def on_validation_epoch_end(self) -> None:
        self._log_quality("val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch)

    def on_test_epoch_end(self) -> None:
        self._log_quality("test")

    # --- checkpoints ---------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The feature extractor is re-read from `metrics.feature_ckpt`, not copied into every GAN checkpoint."""
        super().on_save_checkpoint(checkpoint)
        state = checkpoint["state_dict"]
        for key in [k for k in state if k.startswith(QUALITY_PREFIX)]:
            del state[key]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        checkpoint["state_dict"].update({k: v for k, v in self.state_dict().items() if k.startswith(QUALITY_PREFIX)})


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """`module` in eval mode for the block (batch norm uses its running statistics), then restored."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
