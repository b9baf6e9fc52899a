"""Noise-prediction nets of the diffusion family: `net(x_t, t, labels) -> predicted noise`, shaped like x_t.

Every denoiser embeds the timestep (sinusoidal, as in Ho et al. 2020) and, when conditional, the label
(a learned table with one extra row, the null label classifier-free guidance trains and samples with),
into one vector that each block adds to its features. `MLPDenoiser` works on the flattened example, so
any shape ([D] rows, 8x8 digits, ...); `mlgen.nets.unet.UNet` is for images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mlgen.config.checks import check_int
from mlgen.nets.shapes import flat_size


def timestep_features(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal features `[B, dim]` of integer timesteps (the Transformer's position encoding)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]
    features = torch.cat([angles.sin(), angles.cos()], dim=1)
    return nn.functional.pad(features, (0, dim - 2 * half))


class Conditioning(nn.Module):
    """Timestep (and label) -> one `[B, dim]` embedding; `num_labels` 0: unconditional, the labels are ignored."""

    def __init__(self, dim: int, num_labels: int = 0) -> None:
        super().__init__()
        self.dim = dim
        self.time = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.labels = nn.Embedding(num_labels, dim) if num_labels else None

    def forward(self, t: Tensor, labels: Tensor | None) -> Tensor:
        emb = self.time(timestep_features(t, self.dim))
        if self.labels is not None and labels is not None:
            emb = emb + self.labels(labels)
        return emb


class ResidualMLPBlock(nn.Module):
    """h + MLP(norm(h) + embedding): a pre-norm residual block conditioned by addition."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.emb = nn.Linear(width, width)
        self.body = nn.Sequential(nn.SiLU(), nn.Linear(width, width), nn.SiLU(), nn.Dropout(dropout), nn.Linear(width, width))

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        return h + self.body(self.norm(h) + self.emb(emb))


class MLPDenoiser(nn.Module):
    """Residual MLP on the flattened example, for examples of any shape.

    Args:
        shape: example shape (filled in from the data).
        num_labels: rows of the label table (classes + the null label), 0 for an unconditional model.
        width: hidden width (also the embedding size).
        depth: residual blocks.
        dropout: inside the blocks.
    """

    def __init__(self, shape: Sequence[int], num_labels: int = 0, width: int = 256, depth: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        check_int("model.denoiser.width", width, 2, 256)
        check_int("model.denoiser.depth", depth, 1, 3)
        self.shape = tuple(int(s) for s in shape)
        size = flat_size(shape)
        self.conditioning = Conditioning(width, num_labels)
        self.stem = nn.Linear(size, width)
        self.blocks = nn.ModuleList(ResidualMLPBlock(width, dropout) for _ in range(depth))
        self.head = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, size))

    def forward(self, x: Tensor, t: Tensor, labels: Tensor | None = None) -> Tensor:
        emb = self.conditioning(t, labels)
        h = self.stem(x.flatten(1))
        for block in self.blocks:
            h = block(h, emb)
        return self.head(h).view(-1, *self.shape)
