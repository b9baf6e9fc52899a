"""Each classifier net gives logits `[B, num_classes]` and features `[B, num_features]` for every image shape;
MLP nets (classifier, VAE, GAN) also take rows `[D]`, conv nets refuse them with the fix."""

from __future__ import annotations

import pytest
import torch

from mlgen.errors import ConfigError
from mlgen.nets.conv import ConvClassifierNet
from mlgen.nets.dcgan import DCGANGenerator, MLPDiscriminator, MLPGenerator, with_labels
from mlgen.nets.mlp import MLPClassifierNet
from mlgen.nets.resnet import ResNetClassifierNet
from mlgen.nets.shapes import flat_size
from mlgen.nets.vae_nets import Decoder, Encoder

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


# --- any example shape: MLP nets take rows `[D]`, conv nets refuse them and name the MLP net to use ---
ROW = (6,)


def test_mlp_classifier_takes_rows():
    net = MLPClassifierNet(shape=ROW, num_classes=3, hidden=[8]).eval()
    x = torch.randn(5, *ROW)
    assert net(x).shape == (5, 3) and net.forward_features(x).shape == (5, 8)
    assert sum(p.numel() for p in net.parameters()) == (6 * 8 + 8) + (8 * 3 + 3)


@pytest.mark.parametrize("learned_std", [False, True])
@pytest.mark.parametrize("num_labels", [0, 3])
def test_mlp_vae_nets_take_rows(num_labels, learned_std):
    out_channels = ROW[0] * (2 if learned_std else 1)  # as the VAE asks: mean (and std) per value
    encoder = Encoder(shape=ROW, latent_dim=4, num_labels=num_labels, hidden=[16])
    decoder = Decoder(shape=ROW, latent_dim=4, out_channels=out_channels, num_labels=num_labels, hidden=[16])
    labels = torch.eye(3)[[0, 2, 1, 0, 2]] if num_labels else None
    assert encoder(torch.randn(5, *ROW), labels).shape == (5, 8)
    out = decoder(torch.randn(5, 4), labels)
    assert out.shape == (5, out_channels)
    assert sum(p.numel() for p in encoder.parameters()) == (6 + num_labels) * 16 + 16 + 16 * 8 + 8


@pytest.mark.parametrize("conditioning", ["projection", "concat"])
@pytest.mark.parametrize("conditional", [False, True])
def test_mlp_gan_nets_take_rows(conditional, conditioning):
    labels = torch.tensor([0, 1, 2, 1]) if conditional else None
    generator = MLPGenerator(shape=ROW, num_classes=3, latent_dim=5, conditional=conditional, hidden=[16])
    fake = generator(torch.randn(4, 5), labels)
    assert fake.shape == (4, *ROW) and fake.abs().max() <= 1
    discriminator = MLPDiscriminator(shape=ROW, num_classes=3, conditional=conditional, hidden=[16], conditioning=conditioning)
    assert discriminator(fake, labels).shape == (4,)
    first = discriminator.body[1][0]  # Flatten, then the MLP's first Linear
    extra = 3 if conditional and conditioning == "concat" else 0  # one-hot labels appended to the row
    assert first.in_features == ROW[0] + extra


def test_concat_conditioning_appends_labels_as_values_to_rows_and_as_planes_to_images():
    labels = torch.tensor([2, 0])
    rows = with_labels(torch.zeros(2, 6), labels, 3)
    assert rows.shape == (2, 9) and rows[:, 6:].tolist() == [[0, 0, 1], [1, 0, 0]]
    planes = with_labels(torch.zeros(2, 1, 4, 4), labels, 3)
    assert planes.shape == (2, 4, 4, 4) and torch.equal(planes[0, 3], torch.ones(4, 4)) and planes[1, 3].sum() == 0


CONV_NETS = {
    "ConvClassifierNet": lambda shape: ConvClassifierNet(shape=shape, num_classes=3),
    "ResNetClassifierNet": lambda shape: ResNetClassifierNet(shape=shape, num_classes=3),
    "model.net.encoder.channels": lambda shape: Encoder(shape=shape, latent_dim=4, channels=[8]),
    "model.net.decoder.channels": lambda shape: Decoder(shape=shape, latent_dim=4, out_channels=1, channels=[8]),
    "DCGAN": lambda shape: DCGANGenerator(shape=shape, num_classes=3, latent_dim=4),
}


@pytest.mark.parametrize("name", CONV_NETS)
@pytest.mark.parametrize("shape", [ROW, (1, 8)])
def test_conv_nets_refuse_non_image_shapes_and_name_the_mlp_fix(name, shape):
    with pytest.raises(ConfigError) as err:
        CONV_NETS[name](shape)
    message = str(err.value)
    assert message.startswith(f"data.shape={list(shape)} is invalid") and name in message
    assert "needs images [channels, height, width]" in message and "model/net=mlp" in message


def test_flat_size_counts_values_per_example():
    assert flat_size((6,)) == 6 and flat_size((3, 32, 32)) == 3072
    assert flat_size((6,), channels=12) == 12 and flat_size((1, 8, 8), channels=4) == 256
