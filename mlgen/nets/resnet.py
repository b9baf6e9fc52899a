"""ResNet-18 with the CIFAR stem (3x3 conv, no max-pool) for 32x32 inputs, from torchvision."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, ResNet

from mlgen.nets.shapes import image_shape


class ResNetClassifierNet(nn.Module):
    """torchvision's ResNet with the usual small-image stem, so 32x32 (and 28x28, 8x8) inputs keep
    their resolution through the first stage instead of being downsampled 4x at once."""

    def __init__(self, shape: Sequence[int], num_classes: int, layers: Sequence[int] = (2, 2, 2, 2)) -> None:
        super().__init__()
        channels, _, _ = image_shape(shape, "ResNetClassifierNet")
        net = ResNet(BasicBlock, list(layers), num_classes=num_classes)
        net.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
        self.num_features = net.fc.in_features
        self.head = net.fc
        net.fc = nn.Identity()
        self.backbone = net

    def forward_features(self, x: Tensor) -> Tensor:
        return self.backbone(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x))
