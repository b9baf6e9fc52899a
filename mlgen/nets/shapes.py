"""Sizes derived from the data's example shape, so MLP nets take any shape and conv nets say what they need."""

from __future__ import annotations

import math
from collections.abc import Sequence

from mlgen.config.checks import require


def flat_size(shape: Sequence[int], channels: int | None = None) -> int:
    """Values in one example of `shape` (`[D]`, `[C, H, W]`, ...) when flattened; with `channels`,
    dim 0 counts `channels` instead of `shape[0]` (e.g. label planes added, or mean and std per value)."""
    return (shape[0] if channels is None else channels) * math.prod(shape[1:])


def image_shape(shape: Sequence[int], net: str) -> tuple[int, int, int]:
    """`(C, H, W)` for a convolutional `net`; any other shape is refused with the fix (an MLP net)."""
    require(len(shape) == 3, "data.shape", list(shape),
            f"{net} is convolutional and needs images [channels, height, width]",
            "pick an MLP net for this data (model/net=mlp for a classifier, model/net=vae_mlp for a VAE, "
            "model/gan_nets=mlp for a GAN)")
    c, h, w = (int(s) for s in shape)
    return c, h, w
