"""Multi-layer perceptrons for any input shape."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from mlgen.nets.shapes import flat_size


def mlp(in_features: int, hidden: Sequence[int], out_features: int | None, dropout: float = 0.0) -> nn.Sequential:
    """Linear-ReLU(-Dropout) stack; the last layer is linear (or absent when `out_features` is None)."""
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    if out_features is not None:
        layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


class MLPClassifierNet(nn.Module):
    """Flatten -> hidden layers -> logits, for examples of any shape (`[D]` rows, `[C, H, W]` images).
    `forward_features` gives the penultimate layer."""

    def __init__(self, shape: Sequence[int], num_classes: int, hidden: Sequence[int] = (256, 256), dropout: float = 0.0) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Flatten(), mlp(flat_size(shape), hidden, None, dropout))
        self.num_features = hidden[-1] if hidden else flat_size(shape)
        self.head = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.backbone(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x))
