"""GAN losses, gradient penalty, nets and the EMA generator, on tiny hand-made cases."""

from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlgen.errors import ConfigError
from mlgen.models.gan import GAN
from mlgen.models.gan.losses import discriminator_loss, generator_loss, gradient_penalty
from mlgen.nets.dcgan import (
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
)

LOG2 = math.log(2)
ADAM = {"_target_": "torch.optim.Adam", "lr": 1e-3}
MLP_G = {"_target_": "mlgen.nets.dcgan.MLPGenerator", "hidden": [8]}
MLP_D = {"_target_": "mlgen.nets.dcgan.MLPDiscriminator", "hidden": [8]}


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values)


@pytest.mark.parametrize(
    ("kind", "real", "fake", "expected"),
    [
        ("bce", t(0.0), t(0.0), 2 * LOG2),  # D = 1/2 everywhere
        ("bce", t(20.0), t(-20.0), 0.0),  # confident and right
        ("bce", t(-3.0), t(3.0), 2 * math.log1p(math.exp(3))),  # confident and wrong
        ("hinge", t(0.0), t(0.0), 2.0),
        ("hinge", t(1.5, 3.0), t(-1.0, -2.0), 0.0),  # beyond the margins: no loss
        ("hinge", t(0.5), t(0.5), 0.5 + 1.5),
        ("wgan_gp", t(1.0, 3.0), t(0.0), -2.0),  # fake mean - real mean
    ],
)
def test_discriminator_loss_values(kind, real, fake, expected):
    assert discriminator_loss(kind, real, fake).item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("kind", "fake", "expected"),
    [("bce", t(0.0), LOG2), ("bce", t(20.0), 0.0), ("hinge", t(1.0, 3.0), -2.0), ("wgan_gp", t(-1.0), 1.0)],
)
def test_generator_loss_values(kind, fake, expected):
    assert generator_loss(kind, fake).item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("kind", ["bce", "hinge", "wgan_gp"])
def test_losses_push_scores_the_right_way(kind):
    """Gradient descent on the D loss raises real scores and lowers fake ones; on the G loss it raises fake ones."""
    real, fake = torch.zeros(4, requires_grad=True), torch.zeros(4, requires_grad=True)
    discriminator_loss(kind, real, fake).backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all()
    fake_g = torch.zeros(4, requires_grad=True)
    generator_loss(kind, fake_g).backward()
    assert (fake_g.grad < 0).all()


def test_unknown_loss_is_rejected():
    with pytest.raises(ValueError, match="unknown GAN loss 'lsgan'"):
        discriminator_loss("lsgan", t(0.0), t(0.0))


def test_gradient_penalty_of_hand_made_critics():
    # linear critic w.x with |w| = 2: the gradient norm is 2 at every point, penalty (2 - 1)^2 = 1
    w = torch.tensor([0.0, 2.0, 0.0, 0.0]).view(1, 1, 2, 2)
    real, fake = torch.randn(5, 1, 2, 2), torch.randn(5, 1, 2, 2)
    assert gradient_penalty(lambda x: (x * w).flatten(1).sum(1), real, fake).item() == pytest.approx(1.0, rel=1e-6)
    # critic |x|^2 / 2 has gradient x; with real = fake the points are those samples, norms 3 and 1
    points = torch.zeros(2, 1, 2, 2)
    points[0, 0, 0, 0], points[1, 0, 1, 1] = 3.0, 1.0
    penalty = gradient_penalty(lambda x: 0.5 * x.pow(2).flatten(1).sum(1), points, points.clone())
    assert penalty.item() == pytest.approx(((3 - 1) ** 2 + (1 - 1) ** 2) / 2, rel=1e-6)


def test_gradient_penalty_is_differentiable_in_the_critic_weights():
    critic = nn.Sequential(nn.Flatten(), nn.Linear(4, 1))
    gradient_penalty(lambda x: critic(x).squeeze(1), torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)).backward()
    assert critic[1].weight.grad is not None and critic[1].weight.grad.abs().sum() > 0


SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("pair", ["dcgan", "mlp"])
@pytest.mark.parametrize("conditioning", [None, "projection", "concat"])
def test_nets_map_noise_to_images_and_images_to_scores(shape, pair, conditioning):
    conditional = conditioning is not None
    g_cls, d_cls = (DCGANGenerator, DCGANDiscriminator) if pair == "dcgan" else (MLPGenerator, MLPDiscriminator)
    g = g_cls(shape=shape, num_classes=10, latent_dim=6, conditional=conditional)
    d = d_cls(shape=shape, num_classes=10, conditional=conditional, conditioning=conditioning or "projection", spectral_norm=True)
    labels = torch.tensor([0, 3, 9]) if conditional else None
    images = g(torch.randn(3, 6), labels)
    assert images.shape == (3, *shape) and images.abs().max() <= 1
    assert d(images, labels).shape == (3,)
    # every weight of the discriminator is spectrally normalised
    weights = [m for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]
    assert weights and all(hasattr(m, "parametrizations") for m in weights)


def test_projection_discriminator_score_depends_on_the_label():
    d = MLPDiscriminator(shape=(1, 8, 8), num_classes=10, conditional=True, hidden=[16])
    x = torch.randn(2, 1, 8, 8)
    assert not torch.allclose(d(x, torch.tensor([0, 0])), d(x, torch.tensor([1, 1])))


def test_nets_check_their_labels():
    g = MLPGenerator(shape=(1, 8, 8), num_classes=10, latent_dim=4, conditional=True)
    with pytest.raises(ValueError, match="needs labels"):
        g(torch.randn(2, 4))
    with pytest.raises(ValueError, match="unconditional"):
        MLPGenerator(shape=(1, 8, 8), num_classes=10, latent_dim=4)(torch.randn(2, 4), torch.tensor([0, 1]))


@pytest.mark.parametrize(("shape", "rule"), [((1, 8, 6), "need square images"), ((1, 5, 5), "can't be upsampled")])
def test_dcgan_nets_reject_unsupported_shapes(shape, rule):
    with pytest.raises(ConfigError, match=rf"data.shape=\[{shape[0]}, {shape[1]}, {shape[2]}\].*{rule}.*model/gan_nets=mlp"):
        DCGANGenerator(shape=shape, num_classes=10, latent_dim=4)


def test_unknown_conditioning_is_rejected():
    with pytest.raises(ConfigError, match="model.discriminator.conditioning='film' is unknown"):
        MLPDiscriminator(shape=(1, 8, 8), num_classes=10, conditional=True, conditioning="film")


def make_gan(**kwargs) -> GAN:
    return GAN(shape=(1, 8, 8), num_classes=10, generator=MLP_G, discriminator=MLP_D, optimizer=ADAM,
               d_optimizer=ADAM, latent_dim=4, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"loss": "lsgan"}, r"model.loss='lsgan' is invalid: it must be one of \['bce', 'hinge', 'wgan_gp'\]"),
        ({"n_critic": 0}, "model.n_critic=0 is invalid"),
        ({"latent_dim": 2.5}, "model.latent_dim=2.5 is invalid"),
        ({"gp_weight": -1.0}, "model.gp_weight=-1.0 is invalid"),
        ({"ema_decay": 1.0}, r"model.ema_decay=1.0 is invalid: it must be a finite number in \[0, 1\)"),
        ({"d_optimizer": {"_target_": "torch.optim.Adam", "lr": -1}}, "model.d_optimizer.lr=-1 is invalid"),
        ({"monitor": "val/fid_clf"}, "model.monitor=val/fid_clf needs a classifier"),
        ({"d_scheduler": {"_target_": "torch.optim.lr_scheduler.StepLR"}}, "model.d_scheduler is invalid: .*step_size"),
        ({"scheduler": {"step_size": 1}}, "model.scheduler=.* is invalid: it needs a _target_"),
    ],
)
def test_bad_gan_options_are_rejected(kwargs, message):
    args = {"latent_dim": 4, "d_optimizer": ADAM, **kwargs}
    with pytest.raises(ConfigError, match=message):
        GAN(shape=(1, 8, 8), num_classes=10, generator=MLP_G, discriminator=MLP_D, optimizer=ADAM, **args)


def test_ema_generator_follows_the_exponential_moving_average_rule():
    """torch's AveragedModel: the first update copies the weights, each later one is d * ema + (1 - d) * w."""
    gan = make_gan(ema_decay=0.9)
    weights = []
    for step in range(4):
        with torch.no_grad():
            for p in gan.generator.parameters():
                p.copy_(torch.full_like(p, float(step + 1)))
        weights.append(float(step + 1))
        gan.generator_ema.update_parameters(gan.generator)
    expected = weights[0]
    for w in weights[1:]:
        expected = 0.9 * expected + 0.1 * w
    for p in gan.generator_ema.module.parameters():
        assert torch.allclose(p, torch.full_like(p, expected)), (p.flatten()[:3], expected)
    assert expected == pytest.approx(1.561)


def test_sample_uses_the_ema_generator_in_eval_mode():
    gan = make_gan(ema_decay=0.9, conditional=True)
    with torch.no_grad():
        for p in gan.generator_ema.module.parameters():
            p.add_(0.5)  # EMA and live generator now differ
    torch.manual_seed(0)
    z = torch.randn(6, 4)
    labels = torch.arange(6) % 10
    torch.manual_seed(0)
    samples = gan.sample(6)  # labels default to 0, 1, 2, ...
    assert torch.equal(samples, gan.generator_ema.module(z, labels))
    assert not torch.allclose(samples, gan.generator(z, labels))
    assert gan.generator_ema.module.training  # eval mode only while sampling


def test_sample_without_ema_uses_the_generator_and_rejects_labels_when_unconditional():
    gan = make_gan(ema_decay=None)
    assert gan.generator_ema is None
    torch.manual_seed(1)
    z = torch.randn(3, 4)
    torch.manual_seed(1)
    assert torch.equal(gan.sample(3), gan.generator(z))
    with pytest.raises(ValueError, match="unconditional GAN"):
        gan.sample(3, torch.tensor([0, 1, 2]))


def _fit_one_epoch(gan: GAN, tmp_path) -> pl.Trainer:
    images = torch.rand(16, 1, 8, 8) * 2 - 1
    loader = DataLoader(TensorDataset(images, torch.zeros(16, dtype=torch.long)), batch_size=8)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(gan, loader)
    return trainer


def test_reduce_on_plateau_schedulers_get_the_monitored_metric(tmp_path):
    plateau = {"_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau", "mode": "min"}
    gan = make_gan(scheduler=plateau, d_scheduler=plateau, monitor="train/d_loss")
    trainer = _fit_one_epoch(gan, tmp_path)
    d_loss = float(trainer.callback_metrics["train/d_loss"])
    assert [s.best for s in gan.lr_schedulers()] == pytest.approx([d_loss, d_loss])  # both saw the epoch's mean


def test_reduce_on_plateau_without_the_monitored_metric_names_the_fix(tmp_path):
    gan = make_gan(d_scheduler={"_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau"}, monitor="val/fid")
    with pytest.raises(ConfigError, match=r"model.monitor=val/fid is invalid for a ReduceLROnPlateau scheduler.*Fix: monitor a metric logged"):
        _fit_one_epoch(gan, tmp_path)
