"""Each classifier net gives logits `[B, num_classes]` and features `[B, num_features]` for every data shape."""

from __future__ import annotations

import pytest
import torch

from mlgen.errors import ConfigError
from mlgen.nets.conv import ConvClassifierNet
from mlgen.nets.mlp import MLPClassifierNet
from mlgen.nets.resnet import ResNetClassifierNet

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]
NETS = [MLPClassifierNet, ConvClassifierNet, ResNetClassifierNet]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("net_cls", NETS, ids=lambda c: c.__name__)
def test_output_and_feature_shapes(net_cls, shape):
    net = net_cls(shape=shape, num_classes=7).eval()
    x = torch.randn(3, *shape)
    assert net(x).shape == (3, 7)
    assert net.forward_features(x).shape == (3, net.num_features)


def test_mlp_hidden_sizes_are_used():
    net = MLPClassifierNet(shape=(1, 8, 8), num_classes=10, hidden=[32, 16])
    assert net.num_features == 16
    assert sum(p.numel() for p in net.parameters()) == (64 * 32 + 32) + (32 * 16 + 16) + (16 * 10 + 10)


def test_conv_net_rejects_too_many_pooling_blocks_for_tiny_images():
    with pytest.raises(ConfigError, match=r"model.net.channels=\[8, 16, 32, 64\]"):
        ConvClassifierNet(shape=(1, 8, 8), num_classes=10, channels=[8, 16, 32, 64])


def test_resnet_keeps_resolution_in_first_stage():
    net = ResNetClassifierNet(shape=(3, 32, 32), num_classes=10)
    assert net.backbone.conv1.stride == (1, 1) and isinstance(net.backbone.maxpool, torch.nn.Identity)
