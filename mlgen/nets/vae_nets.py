"""Encoder and decoder of the VAE family for any example shape ([D] rows, [C, H, W] images, ...).

Empty `channels` gives MLPs on the flattened example, for any shape. Otherwise (images only)
strided convolutions (encoder) and transposed convolutions (decoder), each halving/doubling the
resolution, come before/after the MLP part. Labels enter as a one-hot vector concatenated to the
flat features (a CVAE when `num_labels > 0`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mlgen.errors import ConfigError
from mlgen.nets.mlp import mlp
from mlgen.nets.shapes import flat_size, image_shape


def _conv_image_shape(shape: Sequence[int], channels: Sequence[int], key: str) -> tuple[int, int, int]:
    """`(C, H, W)` for the conv part given by `key=channels`: images only, and not halved below one pixel."""
    c, h, w = image_shape(shape, f"the VAE net with {key}={list(channels)}")
    if min(h, w) < 2 ** len(channels):
        raise ConfigError(
            f"{key}={list(channels)} halves the resolution {len(channels)} times, too often for {h}x{w} "
            f"inputs. Fix: give at most {int(math.log2(min(h, w)))} channel entries."
        )
    return c, h, w


def _with_labels(h: Tensor, labels: Tensor | None) -> Tensor:
    return h if labels is None else torch.cat([h, labels], dim=1)


class Encoder(nn.Module):
    """x (+ one-hot labels) -> `[B, 2 * latent_dim]`: the mean and log-variance of q(z | x)."""

    def __init__(
        self,
        shape: Sequence[int],
        latent_dim: int,
        num_labels: int = 0,
        hidden: Sequence[int] = (400, 400),
        channels: Sequence[int] = (),
    ) -> None:
        super().__init__()
        convs: list[nn.Module] = []
        if channels:
            c, _, _ = _conv_image_shape(shape, channels, "model.net.encoder.channels")
            widths = [c, *channels]
            convs = [m for a, b in zip(widths, widths[1:]) for m in (nn.Conv2d(a, b, 4, 2, 1), nn.ReLU(inplace=True))]
        self.features = nn.Sequential(*convs, nn.Flatten())
        with torch.no_grad():
            flat = self.features(torch.zeros(1, *shape)).shape[1]
        self.head = mlp(flat + num_labels, hidden, 2 * latent_dim)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.head(_with_labels(self.features(x), labels))


class Decoder(nn.Module):
    """z (+ one-hot labels) -> `[B, out_channels, *shape[1:]]`: the parameters of p(x | z), with
    `out_channels` values along dim 0 of an example (e.g. C or 2C for an image's mean and std,
    D or 2D for a row's)."""

    def __init__(
        self,
        shape: Sequence[int],
        latent_dim: int,
        out_channels: int,
        num_labels: int = 0,
        hidden: Sequence[int] = (400, 400),
        channels: Sequence[int] = (),
    ) -> None:
        super().__init__()
        self.crop: tuple[int, int] | None = None  # conv outputs are cut to the image size
        if not channels:
            self.start = (out_channels, *shape[1:])
            self.body = mlp(latent_dim + num_labels, hidden, flat_size(shape, out_channels))
            self.upsample: nn.Module = nn.Identity()
            return
        _, height, width = _conv_image_shape(shape, channels, "model.net.decoder.channels")
        self.crop = (height, width)
        factor = 2 ** len(channels)
        self.start = (channels[0], math.ceil(height / factor), math.ceil(width / factor))
        self.body = nn.Sequential(mlp(latent_dim + num_labels, hidden, math.prod(self.start)), nn.ReLU(inplace=True))
        widths = [*channels, channels[-1]]
        ups = [m for a, b in zip(widths, widths[1:]) for m in (nn.ConvTranspose2d(a, b, 4, 2, 1), nn.ReLU(inplace=True))]
        self.upsample = nn.Sequential(*ups, nn.Conv2d(channels[-1], out_channels, 3, padding=1))

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        out = self.upsample(self.body(_with_labels(z, labels)).view(-1, *self.start))
        if self.crop is None:
            return out
        height, width = self.crop
        return out[..., :height, :width]
