"""Denoising diffusion (DDPM, Ho et al. 2020): the family's loss and sampler; the rest is `GenerativeModule`.

Training adds noise to x_0 at a uniform random timestep t (x_t = sqrt(alpha_bar_t) x_0 +
sqrt(1 - alpha_bar_t) eps) and regresses the net's output on eps (`train/loss`, `val/loss`: mean
squared error). Sampling runs DDIM (`mlgen.models.diffusion.sampler`) with `sampling_steps` steps from
the (EMA) denoiser. Class-conditional models learn classifier-free guidance (Ho & Salimans 2022): in
training a share `label_dropout` of the labels is replaced by a null label (index `num_classes`), and
sampling mixes the conditional and the null predictions, eps = eps_null + guidance_scale * (eps_y - eps_null)
(1: plain conditional sampling). Noise, timesteps and dropped labels are drawn per global batch
(`mlgen.distributed.noise`), so DDP trains as one process with the global batch.

Sample-quality metrics on validation cost `val_samples` samples per epoch (null: one per real image)
of `val_sampling_steps` DDIM steps each, whatever the size of the split; the test split, run once, gets
one sample per real image of `sampling_steps` steps, as the other families' test metrics do, and so does
a validation run on its own (`mlgen-eval split=val`, where sampling options are chosen).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from pytorch_lightning.trainer.states import TrainerFn
from torch import Tensor, nn

from mlgen.compat import attached_trainer
from mlgen.config.checks import check_fraction, check_int, check_number, require
from mlgen.distributed.noise import global_batch_randn, global_batch_rows
from mlgen.models.diffusion.sampler import ddim_sample
from mlgen.models.diffusion.schedule import alphas_cumprod, check_schedule
from mlgen.models.generative import GenerativeModule

Batch = tuple[Tensor, Tensor]


class DDPM(GenerativeModule):
    """Noise-prediction diffusion model with DDIM sampling and classifier-free guidance.

    Args:
        denoiser: net config (`mlgen.nets.denoisers.MLPDenoiser` for any shape, `mlgen.nets.unet.UNet`
            for images); `shape` and `num_labels` are filled in.
        timesteps: diffusion steps T of training.
        schedule: `linear` or `cosine` betas.
        beta_start, beta_end: the linear schedule's first and last beta.
        sampling_steps: DDIM steps of `sample()` (1 .. timesteps; timesteps with eta=1 is DDPM's sampler).
        eta: share of fresh noise per DDIM step, 0 (deterministic) .. 1.
        guidance_scale: classifier-free guidance weight at sampling (1: none; > 1 stronger class
            likeness; conditional models trained with label_dropout > 0 only).
        label_dropout: share of training labels replaced by the null label (conditional models).
        clip_denoised: clamp each predicted x_0 to [-1, 1] while sampling (images; false for tables).
        val_samples: samples drawn per validation epoch for the quality metrics (null: one per real
            image of the split); with DDP, split between the ranks.
        val_sampling_steps: DDIM steps of those samples.
        **kwargs: `GenerativeModule`'s arguments (`conditional`, `ema_decay`: EMA denoiser, `metrics`)
            and `MLGenModule`'s (conf/model/ddpm.yaml sets monitor null: the last checkpoint is kept).
    """

    sampling_nets = ("denoiser",)

    def __init__(
        self,
        denoiser: Mapping[str, Any],
        timesteps: int = 1000,
        schedule: str = "linear",
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        sampling_steps: int = 50,
        eta: float = 0.0,
        guidance_scale: float = 1.0,
        label_dropout: float = 0.0,
        clip_denoised: bool = True,
        val_samples: int | None = 1000,
        val_sampling_steps: int = 20,
        **kwargs: Any,
    ) -> None:
        check_schedule(schedule, timesteps, beta_start, beta_end)
        check_int("model.val_sampling_steps", val_sampling_steps, 1, min(20, timesteps))
        require(val_sampling_steps <= timesteps, "model.val_sampling_steps", val_sampling_steps,
                f"it must be at most model.timesteps={timesteps}", f"set model.val_sampling_steps={min(20, timesteps)}")
        if val_samples is not None:
            check_int("model.val_samples", val_samples, 1, 1000)
        check_fraction("model.label_dropout", label_dropout, low_open=False, high_closed=False)
        conditional = bool(kwargs.get("conditional", False))
        require(conditional or label_dropout == 0, "model.label_dropout", label_dropout,
                "label dropout trains classifier-free guidance, which needs a conditional model",
                "set model.label_dropout=0, or use model=ddpm_cond")
        super().__init__(**kwargs)
        self.register_buffer("alphas_cumprod", alphas_cumprod(schedule, timesteps, beta_start, beta_end), persistent=False)
        self._eval_left: float = math.inf  # generated samples this rank still draws in this evaluation epoch
        self._eval_steps = sampling_steps  # and their DDIM steps
        self.configure_sampling(sampling_steps=sampling_steps, eta=eta, guidance_scale=guidance_scale)

    def build_nets(self) -> None:
        num_labels = self.num_classes + 1 if self.conditional else 0  # the last row is the null label
        self.denoiser: nn.Module = self.build_net(self.hparams.denoiser, "model.denoiser", shape=self.shape, num_labels=num_labels)

    # --- sampling ------------------------------------------------------------------------
    def configure_sampling(self, prefix: str = "model.", sampling_steps: int | None = None, eta: float | None = None,
                           guidance_scale: float | None = None, **others: Any) -> None:
        """Change how `sample()` draws (after loading a checkpoint, say), with the config's checks; `prefix`
        names the user's keys (`model.` in the training config, `sampling.` for mlgen-sample)."""
        super().configure_sampling(prefix, **others)
        hp, timesteps = self.hparams, self.hparams.timesteps
        steps = hp.sampling_steps if sampling_steps is None else sampling_steps
        eta = hp.eta if eta is None else eta
        scale = hp.guidance_scale if guidance_scale is None else guidance_scale
        key = f"{prefix}sampling_steps"
        check_int(key, steps, 1, min(50, timesteps))
        require(steps <= timesteps, key, steps, f"DDIM takes at most model.timesteps={timesteps} steps",
                f"set {key}={min(50, timesteps)} (or {timesteps} with {prefix}eta=1 for DDPM's own sampler)")
        check_number(f"{prefix}eta", eta, 0.0, False, 1.0, False, example=0.0)
        check_number(f"{prefix}guidance_scale", scale, 0.0, False, example=1.0)
        if scale != 1:
            require(self.conditional, f"{prefix}guidance_scale", scale,
                    "classifier-free guidance needs a class-conditional model",
                    f"set {prefix}guidance_scale=1, or train with model=ddpm_cond")
            require(hp.label_dropout > 0, f"{prefix}guidance_scale", scale,
                    "guidance needs the null label, which a model trained with model.label_dropout=0 never learnt",
                    f"set {prefix}guidance_scale=1, or train with model.label_dropout=0.1")
        hp.sampling_steps, hp.eta, hp.guidance_scale = steps, eta, scale
        self._sampling_steps = steps

    @contextmanager
    def using_steps(self, steps: int) -> Iterator[None]:
        """`sample()` takes `steps` DDIM steps inside the block (the evaluation budget)."""
        before, self._sampling_steps = self._sampling_steps, steps
        try:
            yield
        finally:
            self._sampling_steps = before

    def predict_noise(self, net: nn.Module, x: Tensor, t: Tensor, labels: Tensor | None) -> Tensor:
        """eps(x_t, t, y), guided by the null label's prediction when `guidance_scale` != 1."""
        scale = self.hparams.guidance_scale
        if labels is None or scale == 1:
            return net(x, t, labels)
        null = torch.full_like(labels, self.num_classes)
        cond, uncond = net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null])).chunk(2)
        return uncond + scale * (cond - uncond)

    def generate(self, n: int, labels: Tensor | None) -> Tensor:
        """DDIM samples from the (EMA) denoiser, in data space."""
        net = self.sampling_net("denoiser")
        return ddim_sample(lambda x, t: self.predict_noise(net, x, t, labels), self.noise, (n, *self.shape),
                           self.alphas_cumprod, self._sampling_steps, self.hparams.eta, self.hparams.clip_denoised)

    # --- training ------------------------------------------------------------------------
    def diffusion_loss(self, x: Tensor, labels: Tensor | None) -> Tensor:
        """Mean squared error of the predicted noise at uniform random timesteps (Ho et al.'s L_simple)."""
        n, device = len(x), x.device
        noise = global_batch_randn(x)
        t = global_batch_rows(lambda m: torch.randint(len(self.alphas_cumprod), (m,), device=device), n)
        bar = self.alphas_cumprod[t].view(n, *[1] * (x.dim() - 1))
        x_t = bar.sqrt() * x + (1 - bar).sqrt() * noise
        return F.mse_loss(self.denoiser(x_t, t, labels), noise)

    def training_labels(self, y: Tensor) -> Tensor | None:
        """The batch's labels with a share `label_dropout` replaced by the null label; None when unconditional."""
        if not self.conditional:
            return None
        p = self.hparams.label_dropout
        if p == 0:
            return y
        drop = global_batch_rows(lambda m: torch.rand(m, device=y.device), len(y)) < p
        return torch.where(drop, torch.full_like(y, self.num_classes), y)

    def train_batch(self, batch: Batch, batch_idx: int) -> Tensor:
        x, y = batch
        loss = self.diffusion_loss(x, self.training_labels(y))
        self.log_train_values({"train/loss": loss}, len(x))
        return loss

    def evaluation_step(self, batch: Batch, split: str) -> None:
        x, y = batch
        loss = self.diffusion_loss(x, y if self.conditional else None)
        self.log_eval_values({f"{split}/loss": loss}, len(x))

    # --- evaluation budget ---------------------------------------------------------------
    def eval_epoch_start(self, split: str) -> None:
        super().eval_epoch_start(split)
        trainer = attached_trainer(self)
        # a validation run on its own (`mlgen-eval split=val`, to choose sampling options) is run once and
        # scored as the test split is; the budget bounds the cost of validating every training epoch
        if split == "test" or (trainer is not None and trainer.state.fn == TrainerFn.VALIDATING):
            self._eval_left, self._eval_steps = math.inf, self.hparams.sampling_steps
            return
        total = self.hparams.val_samples
        world = trainer.world_size if trainer is not None else 1
        self._eval_left = math.inf if total is None else math.ceil(total / world)
        self._eval_steps = self.hparams.val_sampling_steps

    def _update_quality(self, batch: Batch) -> None:
        """All real images of the split, but in validation only `val_samples` generated ones of
        `val_sampling_steps` steps: sampling costs that many net evaluations per image."""
        if self.quality is None:
            return
        x, y = batch
        self.quality.update(x, real=True)
        k = int(min(len(x), self._eval_left))
        if k == 0:
            return
        self._eval_left -= k
        labels = y[:k] if self.conditional else None
        with self.using_steps(self._eval_steps):
            self.quality.update(self.sample(k, labels), real=False, labels=labels)
