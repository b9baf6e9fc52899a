"""CTGAN's nets for table rows `[D]` (Xu et al. 2019): a residual generator and a PacGAN discriminator.

Both take a `condition` (CTGAN's conditional vector, and the target's one-hot for a labelled model)
concatenated to their input; what each slice of a row means is the model's business
(`mlgen.models.tabular_heads`), so the generator ends in `D` raw values.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mlgen.config.checks import check_int, check_number
from mlgen.nets.shapes import flat_size


class Residual(nn.Module):
    """Linear -> (BatchNorm) -> ReLU, its output concatenated to its input (CTGAN's generator block)."""

    def __init__(self, in_features: int, out_features: int, batch_norm: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(in_features, out_features),
                                  nn.BatchNorm1d(out_features) if batch_norm else nn.Identity(), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.body(x), x], dim=1)


class ResidualGenerator(nn.Module):
    """(z, condition) -> `[B, D]` raw outputs through residual blocks of widths `hidden`.

    `batch_norm` is CTGAN's; under DDP its statistics are per rank (use `trainer.sync_batchnorm`, or
    batch_norm=false where runs must match a single process exactly)."""

    def __init__(self, shape: Sequence[int], latent_dim: int, condition_dim: int = 0,
                 hidden: Sequence[int] = (256, 256), batch_norm: bool = True) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = latent_dim + condition_dim
        for h in hidden:
            blocks.append(Residual(width, h, batch_norm))
            width += h
        self.body = nn.Sequential(*blocks, nn.Linear(width, flat_size(shape)))

    def forward(self, z: Tensor, condition: Tensor | None = None) -> Tensor:
        return self.body(z if condition is None else torch.cat([z, condition], dim=1))


class PacDiscriminator(nn.Module):
    """PacGAN critic (Lin et al. 2018): scores packs of `pac` rows (with their conditions) jointly, which
    lets it see a batch's diversity and so fights mode collapse.

    Rows are packed with a stride: of B rows, pack k holds rows k, k + B/pac, k + 2B/pac, ... Under
    mlgen's interleaved DDP shards (rank r holds global rows r, r + world, ...), each rank's packs are then
    exactly packs of the global batch, so N ranks score the packs one process with the global batch
    would. B must be a multiple of `pac`."""

    def __init__(self, shape: Sequence[int], condition_dim: int = 0, pac: int = 10,
                 hidden: Sequence[int] = (256, 256), dropout: float = 0.5, negative_slope: float = 0.2) -> None:
        super().__init__()
        check_int("model.pac", pac, 1, 10)
        check_number("model.discriminator.dropout", dropout, 0.0, False, 1.0, True, example=0.5)
        self.pac = pac
        layers: list[nn.Module] = []
        width = pac * (flat_size(shape) + condition_dim)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(negative_slope)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        self.body = nn.Sequential(*layers, nn.Linear(width, 1))

    def pack(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """`[B, D]` rows (and `[B, C]` conditions) -> `[B / pac, pac * (D + C)]` packs (see the class docstring)."""
        h = x if condition is None else torch.cat([x, condition], dim=1)
        if len(h) % self.pac:
            raise ValueError(f"a batch of {len(h)} rows can't be packed by pac={self.pac}: use a multiple of {self.pac}")
        return h.view(self.pac, len(h) // self.pac, h.shape[1]).transpose(0, 1).reshape(len(h) // self.pac, -1)

    def score(self, packs: Tensor) -> Tensor:
        """Critic values `[B / pac]` of packed rows."""
        return self.body(packs).squeeze(1)

    def forward(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        return self.score(self.pack(x, condition))
