"""A small CNN that fits 8x8, 28x28 and 32x32 images ([C, H, W] data only)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mlgen.errors import ConfigError
from mlgen.nets.shapes import image_shape


def conv_block(in_ch: int, out_ch: int) -> nn.Sequential:
    """Two 3x3 convs with batch norm, then 2x2 max pooling (halves the resolution)."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class ConvClassifierNet(nn.Module):
    """Conv blocks (one per entry of `channels`) -> flatten -> hidden layer -> logits."""

    def __init__(
        self,
        shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (32, 64),
        hidden: int = 128,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        c, h, w = image_shape(shape, "ConvClassifierNet")
        if min(h, w) < 2 ** len(channels):
            raise ConfigError(
                f"model.net.channels={list(channels)} has {len(channels)} pooling blocks, too many for "
                f"{h}x{w} inputs. Fix: give at most {int(math.log2(min(h, w)))} channel entries."
            )
        widths = [c, *channels]
        self.features = nn.Sequential(*(conv_block(a, b) for a, b in zip(widths, widths[1:])), nn.Flatten())
        with torch.no_grad():
            flat = self.features(torch.zeros(1, *shape)).shape[1]
        self.backbone = nn.Sequential(self.features, nn.Dropout(dropout), nn.Linear(flat, hidden), nn.ReLU(inplace=True))
        self.num_features = hidden
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward_features(self, x: Tensor) -> Tensor:
        return self.backbone(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x))
