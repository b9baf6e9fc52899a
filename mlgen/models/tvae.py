"""TVAE (Xu et al. 2019, "Modeling Tabular Data using Conditional GAN", section 4.1) on the VAE family.

The VAE's encoder, decoder, ELBO, beta, IWAE bound and metrics are reused; what is tabular is the
decoder's likelihood, built from the table's layout (`mlgen.models.tabular_heads`): a Gaussian per
scalar of the encoded row (its mean through the span's tanh / identity, a learned sigma per scalar as
in TVAE, kept in [sigma_min, sigma_max]) and a categorical (softmax, cross-entropy) per one-hot span.
With `conditional: true` the target's class enters encoder and decoder (a CVAE), so `sample(n, labels)`
draws rows of the asked classes and every sampled row carries its label.

Samples are draws from p(x | z): each scalar its mean plus N(0, sigma) noise (as TVAE samples), each
one-hot a category drawn from its softmax. `reconstruct` gives the most likely row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mlgen.config.checks import check_number, require
from mlgen.models.tabular_heads import TableLayout
from mlgen.models.vae import VAE


class TVAE(VAE):
    """VAE with mixed output heads for table rows.

    Args:
        layout: the table's spans as plain data, `${mlgen_table:layout}` (kept in the checkpoint).
        sigma_init, sigma_min, sigma_max: the learned per-scalar std of the decoder's Gaussians
            (TVAE: 0.1, clamped to [0.01, 1]).
        **kwargs: `VAE`'s arguments (net, latent_dim, beta, ...; `likelihood` can only be gaussian).
    """

    def __init__(
        self,
        layout: Sequence[Mapping[str, Any]] | None = None,
        sigma_init: float = 0.1,
        sigma_min: float = 0.01,
        sigma_max: float = 1.0,
        **kwargs: Any,
    ) -> None:
        check_number("model.sigma_min", sigma_min, 0.0, True, example=0.01)
        check_number("model.sigma_max", sigma_max, sigma_min, example=1.0)
        check_number("model.sigma_init", sigma_init, sigma_min, False, sigma_max, False, example=0.1)
        kwargs.setdefault("likelihood", "gaussian")
        require(kwargs["likelihood"] == "gaussian", "model.likelihood", kwargs["likelihood"],
                "TVAE's likelihood is its mixed tabular heads (Gaussian scalars, categorical one-hots)",
                "leave model.likelihood out (or gaussian)")
        super().__init__(**kwargs)

    def build_nets(self) -> None:
        hp = self.hparams
        self.table = TableLayout(hp.layout, self.shape[0], "TVAE")
        num_labels = self.num_classes if self.conditional else 0
        common = {"shape": self.shape, "latent_dim": hp.latent_dim, "num_labels": num_labels}
        self.encoder = self.build_net(hp.net["encoder"], "model.net.encoder", **common)
        self.decoder = self.build_net(hp.net["decoder"], "model.net.decoder", out_channels=self.shape[0], **common)
        self.log_sigma = nn.Parameter(torch.full((self.table.num_scalars,), math.log(hp.sigma_init)))

    def sigma(self) -> Tensor:
        return self.log_sigma.exp().clamp(self.hparams.sigma_min, self.hparams.sigma_max)

    def log_likelihood(self, out: Tensor, x: Tensor) -> Tensor:
        return self.table.log_likelihood(out, self.sigma().log(), x)

    def to_image(self, out: Tensor) -> Tensor:
        """The most likely row: activated scalars, the argmax category of each one-hot."""
        return self.table.most_likely(out)

    def generate(self, n: int, labels: Tensor | None) -> Tensor:
        """Rows drawn from p(x | z), z ~ N(0, I), from the (EMA) decoder."""
        raw = self.sampling_net("decoder")(self.noise(n, self.hparams.latent_dim), self.one_hot(labels))
        scalars = self.table.scalar_means(raw) + self.sigma() * self.noise(n, self.table.num_scalars)
        bounded = self.table.tanh_mask.to(raw.device)
        scalars = torch.where(bounded, scalars.clamp(-1, 1), scalars)
        return self.table.draw(scalars, raw)
