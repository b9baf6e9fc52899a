"""A small U-Net denoiser for images (28x28 MNIST, 32x32 CIFAR-10), after Ho et al. 2020.

Residual blocks (group norm, SiLU, 3x3 convolutions) take the timestep-and-label embedding of
`mlgen.nets.denoisers.Conditioning` as a per-channel shift; each level but the last halves the
resolution, the decoder mirrors it with skip connections; optional self-attention (torch's
`nn.MultiheadAttention` over the pixels) at the levels named in `attention_levels` and in the middle.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mlgen.config.checks import check_int, check_number, require
from mlgen.nets.denoisers import Conditioning
from mlgen.nets.shapes import image_shape


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(groups, channels), channels)


class ResidualBlock(nn.Module):
    """conv(SiLU(norm(x))) + embedding shift, twice, plus a (projected) shortcut."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.first = nn.Sequential(_norm(in_ch, groups), nn.SiLU(), nn.Conv2d(in_ch, out_ch, 3, padding=1))
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, out_ch))
        self.second = nn.Sequential(_norm(out_ch, groups), nn.SiLU(), nn.Dropout(dropout), nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.first(x) + self.emb(emb)[:, :, None, None]
        return self.shortcut(x) + self.second(h)


class SelfAttention(nn.Module):
    """x + attention(norm(x)) over the H*W positions."""

    def __init__(self, channels: int, groups: int, heads: int) -> None:
        super().__init__()
        self.norm = _norm(channels, groups)
        self.attention = nn.MultiheadAttention(channels, math.gcd(heads, channels), batch_first=True)

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        b, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)
        out, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class Stage(nn.Module):
    """A residual block, optionally followed by self-attention."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, groups: int, dropout: float, attention: bool, heads: int) -> None:
        super().__init__()
        self.block = ResidualBlock(in_ch, out_ch, emb_dim, groups, dropout)
        self.attention = SelfAttention(out_ch, groups, heads) if attention else None

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        x = self.block(x, emb)
        return x if self.attention is None else self.attention(x)


class UNet(nn.Module):
    """Noise prediction for `[C, H, W]` images.

    Args:
        shape: image shape (filled in from the data); H and W must halve `len(channels) - 1` times.
        num_labels: rows of the label table (classes + the null label), 0 for an unconditional model.
        channels: feature channels per resolution level, e.g. [32, 64, 64].
        blocks_per_level: residual blocks per level in the encoder (the decoder has one more).
        attention_levels: level indices (0 = full resolution) with self-attention after each block.
        mid_attention: self-attention between the two middle blocks.
        heads: attention heads.
        groups: group-norm groups (fewer where a layer's channels need it).
        dropout: inside the residual blocks.
    """

    def __init__(
        self,
        shape: Sequence[int],
        num_labels: int = 0,
        channels: Sequence[int] = (32, 64, 64),
        blocks_per_level: int = 1,
        attention_levels: Sequence[int] = (),
        mid_attention: bool = True,
        heads: int = 4,
        groups: int = 8,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        c, h, w = image_shape(shape, "the U-Net denoiser (model/denoiser=unet)")
        channels, attention_levels = [int(ch) for ch in channels], [int(a) for a in attention_levels]
        require(len(channels) >= 1 and all(ch >= 1 for ch in channels), "model.denoiser.channels", channels,
                "give one positive channel count per resolution level", "e.g. model.denoiser.channels=[32,64,64]")
        factor = 2 ** (len(channels) - 1)
        require(h % factor == 0 and w % factor == 0, "model.denoiser.channels", channels,
                f"{len(channels)} levels halve the resolution {len(channels) - 1} times, so height and width must be "
                f"divisible by {factor}, but the images are {h}x{w}",
                f"give {max(k for k in range(1, 6) if h % 2 ** (k - 1) == 0 and w % 2 ** (k - 1) == 0)} or fewer levels "
                "(28x28: e.g. [32,64,64]; 32x32: up to 4 levels)")
        require(all(0 <= a < len(channels) for a in attention_levels), "model.denoiser.attention_levels", attention_levels,
                f"levels are numbered 0 to {len(channels) - 1}", "e.g. model.denoiser.attention_levels=[1] or []")
        check_int("model.denoiser.blocks_per_level", blocks_per_level, 1, 1)
        check_int("model.denoiser.heads", heads, 1, 4)
        check_int("model.denoiser.groups", groups, 1, 8)
        check_number("model.denoiser.dropout", dropout, 0.0, False, 1.0, True, example=0.1)
        emb_dim = 4 * channels[0]
        stage = functools.partial(Stage, emb_dim=emb_dim, groups=groups, dropout=dropout, heads=heads)
        self.conditioning = Conditioning(emb_dim, num_labels)
        self.stem = nn.Conv2d(c, channels[0], 3, padding=1)

        self.down = nn.ModuleList()
        skips, width = [channels[0]], channels[0]
        for level, ch in enumerate(channels):
            for _ in range(blocks_per_level):
                self.down.append(stage(width, ch, attention=level in attention_levels))
                width = ch
                skips.append(width)
            if level < len(channels) - 1:
                self.down.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
                skips.append(width)
        self.middle = nn.ModuleList([stage(width, width, attention=mid_attention), stage(width, width, attention=False)])
        self.up = nn.ModuleList()
        for level, ch in reversed(list(enumerate(channels))):
            for _ in range(blocks_per_level + 1):
                self.up.append(stage(width + skips.pop(), ch, attention=level in attention_levels))
                width = ch
            if level > 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(width, width, 3, padding=1)))
        self.head = nn.Sequential(_norm(width, groups), nn.SiLU(), nn.Conv2d(width, c, 3, padding=1))

    def forward(self, x: Tensor, t: Tensor, labels: Tensor | None = None) -> Tensor:
        emb = self.conditioning(t, labels)
        h = self.stem(x)
        skips = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, Stage) else layer(h)
            skips.append(h)
        for layer in self.middle:
            h = layer(h, emb)
        for layer in self.up:
            h = layer(torch.cat([h, skips.pop()], dim=1), emb) if isinstance(layer, Stage) else layer(h)
        return self.head(h)
