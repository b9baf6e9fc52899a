"""Variational autoencoders: VAE, conditional VAE (`conditional=true`), beta-VAE (`beta`, warm-up).

Logged per split, in nats per example: `<split>/elbo` (the bound, beta = 1), `<split>/recon`
(E_q[-log p(x|z)]) and `<split>/kl` (KL(q(z|x) || p(z))), so elbo = -(recon + kl). Training
minimises `train/loss` = recon + beta * kl. The test split also reports `test/iwae_nll`, the
importance-weighted bound on -log p(x) with `iwae_samples` samples (tighter as it grows).
Sampling, the EMA decoder (`ema_decay`) and FID/KID/label agreement (`metrics.feature_ckpt`) come
from `GenerativeModule`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Normal

from mlgen.config.checks import check_choice, check_int, check_number, is_finite_number, require
from mlgen.distributed.noise import global_batch_randn
from mlgen.metrics.likelihood import (
    iwae_nll,
    kl_to_standard_normal,
    log_normal_diag,
    log_standard_normal,
)
from mlgen.models.generative import GenerativeModule

LIKELIHOODS = ("bernoulli", "gaussian")
Batch = tuple[Tensor, Tensor]


def _tile(t: Tensor | None, m: int) -> Tensor | None:
    """`m` copies of a batch stacked along dim 0 (matching `z.flatten(0, 1)` of `[m, B, ...]` samples)."""
    return None if t is None else t.repeat(m, *([1] * (t.dim() - 1)))


class VAE(GenerativeModule):
    """Gaussian latent, standard-normal prior, Bernoulli or Gaussian decoder; samples come from the decoder.

    Args:
        net: `{encoder: cfg, decoder: cfg}` (see `mlgen.nets.vae_nets`); shapes are filled in.
        latent_dim: size of z.
        likelihood: `bernoulli` (pixels mapped to [0, 1]; meant for `data.binarize=true`) or
            `gaussian` (on the [-1, 1] data).
        gaussian_std: `learned` (per pixel, output by the decoder) or a fixed positive std.
        gaussian_min_std: floor of a learned std, so the likelihood can't diverge on constant pixels.
        beta: weight of the KL term in the training loss (beta-VAE when > 1).
        beta_warmup_steps: beta rises linearly from 0 over this many optimizer steps (0: off).
        iwae_samples: importance samples per test example for `test/iwae_nll`.
        iwae_chunk: samples decoded at once for the IWAE bound (memory ~ chunk x eval batch).
        **kwargs: `GenerativeModule`'s arguments (`conditional`: CVAE; `ema_decay`: EMA decoder;
            `metrics`: FID/KID) and `MLGenModule`'s (conf/model/vae.yaml monitors val/elbo, max).
    """

    sampling_nets = ("decoder",)

    def __init__(
        self,
        net: Mapping[str, Any],
        latent_dim: int = 20,
        likelihood: str = "bernoulli",
        gaussian_std: float | str = "learned",
        gaussian_min_std: float = 0.01,
        beta: float = 1.0,
        beta_warmup_steps: int = 0,
        iwae_samples: int = 1000,
        iwae_chunk: int = 100,
        **kwargs: Any,
    ) -> None:
        check_int("model.latent_dim", latent_dim, 1, 20)
        check_choice("model.likelihood", likelihood, LIKELIHOODS)
        require(gaussian_std == "learned" or (is_finite_number(gaussian_std) and gaussian_std > 0), "model.gaussian_std", gaussian_std,
                "it must be `learned` or a positive number", "e.g. model.gaussian_std=learned or model.gaussian_std=0.1")
        check_number("model.gaussian_min_std", gaussian_min_std, 0.0, True, example=0.01)
        check_number("model.beta", beta, 0.0, example=1.0)
        check_int("model.beta_warmup_steps", beta_warmup_steps, 0)
        check_int("model.iwae_samples", iwae_samples, 1, 100)
        check_int("model.iwae_chunk", iwae_chunk, 1, 100)
        require(isinstance(net, Mapping) and {"encoder", "decoder"} <= set(net), "model.net", net,
                "a VAE needs model.net.encoder and model.net.decoder", "use model/net=vae_mlp or model/net=vae_conv")
        super().__init__(**kwargs)

    def build_nets(self) -> None:
        hp = self.hparams
        self.learned_std = hp.likelihood == "gaussian" and hp.gaussian_std == "learned"
        num_labels = self.num_classes if self.conditional else 0
        out_channels = self.shape[0] * (2 if self.learned_std else 1)
        common = {"shape": self.shape, "latent_dim": hp.latent_dim, "num_labels": num_labels}
        self.encoder = self.build_net(hp.net["encoder"], "model.net.encoder", **common)
        self.decoder = self.build_net(hp.net["decoder"], "model.net.decoder", out_channels=out_channels, **common)

    # --- the model ---------------------------------------------------------------------
    def one_hot(self, labels: Tensor | None) -> Tensor | None:
        """One-hot labels for a CVAE, None for an unconditional VAE (which ignores labels in training)."""
        return F.one_hot(labels.long(), self.num_classes).float() if self.conditional and labels is not None else None

    def encode(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z | x)."""
        mu, logvar = self.encoder(x, self.one_hot(labels)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Parameters of p(x | z): Bernoulli logits, or Gaussian mean (and raw std if learned)."""
        return self.decoder(z, self.one_hot(labels))

    def log_likelihood(self, out: Tensor, x: Tensor) -> Tensor:
        """log p(x | z) per example, for decoder output `out` and data `x` in [-1, 1]."""
        if self.hparams.likelihood == "bernoulli":
            return -F.binary_cross_entropy_with_logits(out, (x + 1) / 2, reduction="none").flatten(1).sum(1)
        return Normal(*self._mean_std(out)).log_prob(x).flatten(1).sum(1)

    def _mean_std(self, out: Tensor) -> tuple[Tensor, Tensor | float]:
        if not self.learned_std:
            return out, float(self.hparams.gaussian_std)
        mean, raw = out.chunk(2, dim=1)
        return mean, F.softplus(raw) + self.hparams.gaussian_min_std

    def to_image(self, out: Tensor) -> Tensor:
        """The mean of p(x | z) in data space, [-1, 1]."""
        if self.hparams.likelihood == "bernoulli":
            return torch.sigmoid(out) * 2 - 1
        return self._mean_std(out)[0].clamp(-1, 1)

    def elbo_terms(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One-sample (reparameterised) reconstruction NLL and closed-form KL, per example."""
        mu, logvar = self.encode(x, labels)
        z = mu + (0.5 * logvar).exp() * global_batch_randn(mu)  # DDP draws a 1-process run's noise
        recon = -self.log_likelihood(self.decode(z, labels), x)
        return recon, kl_to_standard_normal(mu, logvar)

    def iwae_nll(self, x: Tensor, labels: Tensor | None = None, k: int | None = None) -> Tensor:
        """Importance-weighted bound on -log p(x) per example with `k` samples (default `iwae_samples`)."""
        mu, logvar = self.encode(x, labels)

        def log_weights(m: int) -> Tensor:  # [m, B]: log p(x | z) + log p(z) - log q(z | x) for m fresh z
            z = mu + (0.5 * logvar).exp() * torch.randn(m, *mu.shape, device=mu.device)
            out = self.decode(z.flatten(0, 1), _tile(labels, m))
            log_px = self.log_likelihood(out, _tile(x, m)).view(m, len(x))
            return log_px + log_standard_normal(z) - log_normal_diag(z, mu, logvar)

        return iwae_nll(log_weights, k or self.hparams.iwae_samples, self.hparams.iwae_chunk)

    def generate(self, n: int, labels: Tensor | None) -> Tensor:
        """Means of p(x | z), z ~ N(0, I), in [-1, 1], from the (EMA) decoder."""
        z = self.noise(n, self.hparams.latent_dim)
        return self.to_image(self.sampling_net("decoder")(z, self.one_hot(labels)))

    @torch.no_grad()
    def reconstruct(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """Decoded posterior means, in [-1, 1]."""
        return self.to_image(self.decode(self.encode(x, labels)[0], labels))

    # --- training ----------------------------------------------------------------------
    def beta_at(self, step: int) -> float:
        """KL weight after `step` optimizer steps (linear warm-up from 0 to `beta`)."""
        warmup = self.hparams.beta_warmup_steps
        return self.hparams.beta * min(1.0, step / warmup) if warmup else self.hparams.beta

    def _step(self, batch: Batch, split: str) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        x, y = batch
        recon, kl = self.elbo_terms(x, y)
        terms = {f"{split}/elbo": -(recon + kl).mean(), f"{split}/recon": recon.mean(), f"{split}/kl": kl.mean()}
        if split != "train":
            self.log_eval_values(terms, len(x))
        return recon, kl, terms

    def train_batch(self, batch: Batch, batch_idx: int) -> Tensor:
        recon, kl, terms = self._step(batch, "train")
        beta = self.beta_at(self.global_step)
        loss = (recon + beta * kl).mean()
        self.log_train_values({**terms, "train/loss": loss, "train/beta": beta}, len(recon))
        return loss

    def evaluation_step(self, batch: Batch, split: str) -> None:
        self._step(batch, split)
        if split == "test":
            x, y = batch
            self.log_eval_values({"test/iwae_nll": self.iwae_nll(x, y).mean()}, len(x))
