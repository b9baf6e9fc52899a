"""GAN nets sized from the data's shape: a DCGAN pair (images: 8x8, 28x28, 32x32, ...) and an MLP
pair (any example shape: [D] rows, [C, H, W] images, ...).

Generators map `(z [B, latent_dim], labels [B] | None)` to examples in [-1, 1] (tanh); discriminators
map `(x, labels | None)` to one unbounded score per sample. Conditional nets take one-hot labels:
the generator appends them to z; the discriminator either projects its features onto a label
embedding (`conditioning=projection`, Miyato & Koyama 2018) or reads the labels as extra
constant input channels along dim 1 (`conditioning=concat`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as sn

from mlgen.errors import ConfigError
from mlgen.nets.mlp import mlp
from mlgen.nets.shapes import flat_size, image_shape

CONDITIONING = ("projection", "concat")


def upsampling_plan(shape: Sequence[int]) -> tuple[int, int]:
    """`(base, n)`: the image side is `base * 2**n`, halving while even and above 4
    (8 -> 4 and 1 step, 28 -> 7 and 2, 32 -> 4 and 3)."""
    _, h, w = image_shape(shape, "the DCGAN pair (model/gan_nets=dcgan)")
    if h != w:
        raise ConfigError(f"data.shape={list(shape)}: the DCGAN nets need square images. Fix: use the MLP nets (model/gan_nets=mlp) for {h}x{w} data.")
    base, n = h, 0
    while base % 2 == 0 and base > 4:
        base, n = base // 2, n + 1
    if n == 0:
        raise ConfigError(f"data.shape={list(shape)}: {h}x{w} images can't be upsampled by 2 from a smaller grid. Fix: use the MLP nets (model/gan_nets=mlp).")
    return base, n


def with_labels(z: Tensor, labels: Tensor | None, num_classes: int) -> Tensor:
    """`z` with one-hot labels appended on dim 1, repeated over the dims after it (constant planes for
    images, extra values for rows); unchanged without labels."""
    if labels is None:
        return z
    onehot = F.one_hot(labels, num_classes).to(z.dtype)
    onehot = onehot.view(*onehot.shape, *[1] * (z.dim() - 2)).expand(-1, -1, *z.shape[2:])
    return torch.cat([z, onehot], dim=1)


def check_labels(conditional: bool, labels: Tensor | None) -> None:
    if conditional and labels is None:
        raise ValueError("a conditional GAN net needs labels")
    if not conditional and labels is not None:
        raise ValueError("labels were given to an unconditional GAN net")


class Discriminator(nn.Module):
    """Score head shared by the DCGAN and MLP discriminators: `body` maps the input (with label
    planes under `concat`) to `num_features` features, a linear layer to a score, plus the
    projection term `<embed(y), h>` under `projection`."""

    def __init__(self, body: nn.Module, num_features: int, num_classes: int, conditional: bool,
                 conditioning: str, spectral_norm: bool) -> None:
        super().__init__()
        if conditioning not in CONDITIONING:
            raise ConfigError(f"model.discriminator.conditioning={conditioning!r} is unknown. Fix: use one of {list(CONDITIONING)}.")
        norm = sn if spectral_norm else (lambda m: m)
        if spectral_norm:
            for module in [m for m in body.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]:
                sn(module)
        self.body = body
        self.num_classes = num_classes
        self.conditional = conditional
        self.conditioning = conditioning
        self.score = norm(nn.Linear(num_features, 1))
        self.embed = norm(nn.Embedding(num_classes, num_features)) if conditional and conditioning == "projection" else None

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        check_labels(self.conditional, labels)
        h = self.body(with_labels(x, labels, self.num_classes) if self.conditioning == "concat" else x)
        out = self.score(h).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(labels) * h).sum(dim=1)
        return out


def label_channels(num_classes: int, conditional: bool, conditioning: str) -> int:
    return num_classes if conditional and conditioning == "concat" else 0


class DCGANGenerator(nn.Module):
    """Linear -> `width * 2**(n-1)` maps on the base grid -> n transposed convs (stride 2, BN, ReLU),
    each halving the width; the last one outputs the image channels through tanh."""

    def __init__(self, shape: Sequence[int], num_classes: int, latent_dim: int, conditional: bool = False, width: int = 64) -> None:
        super().__init__()
        base, n = upsampling_plan(shape)
        self.shape, self.num_classes, self.conditional = tuple(shape), num_classes, conditional
        ch = width * 2 ** (n - 1)
        self.stem = nn.Sequential(
            nn.Linear(latent_dim + (num_classes if conditional else 0), ch * base * base, bias=False),
            nn.Unflatten(1, (ch, base, base)), nn.BatchNorm2d(ch), nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(inplace=True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, shape[0], 4, 2, 1), nn.Tanh()]
        self.up = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        check_labels(self.conditional, labels)
        return self.up(self.stem(with_labels(z, labels, self.num_classes)))


class DCGANDiscriminator(Discriminator):
    """n strided 4x4 convs with LeakyReLU (no batch norm, so WGAN-GP's per-sample penalty is valid),
    doubling the width from `width`, down to the base grid; then the shared score head."""

    def __init__(self, shape: Sequence[int], num_classes: int, conditional: bool = False, width: int = 64,
                 conditioning: str = "projection", spectral_norm: bool = False) -> None:
        base, n = upsampling_plan(shape)
        layers: list[nn.Module] = []
        ch_in, ch = shape[0] + label_channels(num_classes, conditional, conditioning), width
        for _ in range(n):
            layers += [nn.Conv2d(ch_in, ch, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
            ch_in, ch = ch, ch * 2
        layers.append(nn.Flatten())
        super().__init__(nn.Sequential(*layers), ch_in * base * base, num_classes, conditional, conditioning, spectral_norm)


class MLPGenerator(nn.Module):
    """(z, one-hot labels) -> hidden ReLU layers -> tanh example of `shape`; for rows and tiny images (8x8 digits)."""

    def __init__(self, shape: Sequence[int], num_classes: int, latent_dim: int, conditional: bool = False,
                 hidden: Sequence[int] = (256, 256)) -> None:
        super().__init__()
        self.num_classes, self.conditional = num_classes, conditional
        self.net = nn.Sequential(
            mlp(latent_dim + (num_classes if conditional else 0), hidden, flat_size(shape)), nn.Tanh(), nn.Unflatten(1, tuple(shape))
        )

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        check_labels(self.conditional, labels)
        return self.net(with_labels(z, labels, self.num_classes))


class MLPDiscriminator(Discriminator):
    """Flattened example (plus label channels under `concat`) -> hidden ReLU layers -> shared score head."""

    def __init__(self, shape: Sequence[int], num_classes: int, conditional: bool = False, hidden: Sequence[int] = (256, 256),
                 conditioning: str = "projection", spectral_norm: bool = False) -> None:
        in_features = flat_size(shape, shape[0] + label_channels(num_classes, conditional, conditioning))
        body = nn.Sequential(nn.Flatten(), mlp(in_features, hidden, None))
        super().__init__(body, hidden[-1] if hidden else in_features, num_classes, conditional, conditioning, spectral_norm)
