import math
import re

import pytest
import torch
from torch import nn

from mlgen.errors import ConfigError
from mlgen.models.vae import VAE
from mlgen.nets.vae_nets import Decoder, Encoder

MLP_NET = {
    "encoder": {"_target_": "mlgen.nets.vae_nets.Encoder", "hidden": [16]},
    "decoder": {"_target_": "mlgen.nets.vae_nets.Decoder", "hidden": [16]},
}
ADAM = {"_target_": "torch.optim.Adam", "lr": 1e-3}


def make_vae(shape=(1, 2, 2), **kwargs):
    return VAE(shape=shape, num_classes=3, net=MLP_NET, optimizer=ADAM, latent_dim=2, **kwargs)


def constant_outputs(vae, encoder_bias, decoder_bias):
    """Zero every weight so the encoder outputs `encoder_bias` and the decoder `decoder_bias` for any input."""
    for module in vae.modules():
        if isinstance(module, nn.Linear):
            nn.init.zeros_(module.weight)
            nn.init.zeros_(module.bias)
    vae.encoder.head[-1].bias.data = torch.tensor(encoder_bias)
    vae.decoder.body[-1].bias.data.fill_(decoder_bias)


def test_bernoulli_elbo_terms_match_hand_computed_values():
    vae = make_vae()
    constant_outputs(vae, [0.5, 0.5, 0.0, 0.0], 0.0)  # q = N(0.5, 1) per dim; logits 0: p = 1/2 per pixel
    x = torch.tensor([[[[-1.0, 1.0], [1.0, -1.0]]]])
    recon, kl = vae.elbo_terms(x)
    assert recon.item() == pytest.approx(4 * math.log(2), rel=1e-5)  # 4 pixels, each -log(1/2)
    assert kl.item() == pytest.approx(2 * 0.5 * 0.5**2, rel=1e-5)  # 0.5 * mu^2 per latent dim
    # the decoder ignores z, so -log p(x) = 4 log 2 exactly; the IWAE bound drops the KL gap as k grows
    torch.manual_seed(0)
    assert vae.iwae_nll(x.expand(1000, -1, -1, -1), k=1).mean().item() == pytest.approx(recon.item() + kl.item(), abs=0.05)
    assert vae.iwae_nll(x, k=5000).item() == pytest.approx(4 * math.log(2), abs=0.05)


def test_gaussian_elbo_terms_with_fixed_and_learned_std():
    x = torch.ones(1, 1, 2, 2)
    fixed = make_vae(likelihood="gaussian", gaussian_std=0.5)
    constant_outputs(fixed, [0.0] * 4, 0.0)
    recon, kl = fixed.elbo_terms(x)
    # per pixel: (1 - 0)^2 / (2 * 0.25) + log(0.5) + 0.5 log(2 pi)
    assert recon.item() == pytest.approx(4 * (2.0 + math.log(0.5) + 0.5 * math.log(2 * math.pi)), rel=1e-5)
    assert kl.item() == pytest.approx(0.0, abs=1e-6)
    learned = make_vae(likelihood="gaussian", gaussian_std="learned", gaussian_min_std=0.1)
    constant_outputs(learned, [0.0] * 4, 0.0)
    std = math.log(2) + 0.1  # softplus(0) + floor
    recon, _ = learned.elbo_terms(x)
    assert recon.item() == pytest.approx(4 * (1 / (2 * std**2) + math.log(std) + 0.5 * math.log(2 * math.pi)), rel=1e-5)


def test_sample_and_reconstruct_are_images_in_data_range():
    vae = make_vae(shape=(1, 8, 8))
    images = vae.sample(5)
    assert images.shape == (5, 1, 8, 8) and images.min() >= -1 and images.max() <= 1
    assert vae.reconstruct(torch.rand(3, 1, 8, 8) * 2 - 1).shape == (3, 1, 8, 8)
    with pytest.raises(ValueError, match="unconditional"):
        vae.sample(2, labels=torch.tensor([0, 1]))


def test_cvae_samples_depend_on_labels():
    cvae = make_vae(shape=(1, 8, 8), conditional=True)
    torch.manual_seed(0)
    a = cvae.sample(4, torch.tensor([0, 0, 0, 0]))
    torch.manual_seed(0)
    b = cvae.sample(4, torch.tensor([1, 1, 1, 1]))
    torch.manual_seed(0)
    c = cvae.sample(4)  # classes in turn: 0, 1, 2, 0
    assert not torch.allclose(a, b)
    assert torch.allclose(c[0], a[0]) and torch.allclose(c[1], b[1])


def test_beta_warms_up_linearly():
    vae = make_vae(beta=4.0, beta_warmup_steps=1000)
    assert [vae.beta_at(s) for s in (0, 250, 1000, 5000)] == [0.0, 1.0, 4.0, 4.0]
    assert make_vae(beta=2.0).beta_at(0) == 2.0


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"latent_dim": -3}, "model.latent_dim=-3"),
        ({"likelihood": "poisson"}, "model.likelihood='poisson'"),
        ({"gaussian_std": 0}, "model.gaussian_std=0"),
        ({"beta": -1.0}, "model.beta=-1.0"),
        ({"beta_warmup_steps": 1.5}, "model.beta_warmup_steps=1.5"),
        ({"iwae_samples": 0}, "model.iwae_samples=0"),
    ],
)
def test_bad_options_name_the_config_key(option, message):
    kwargs = {"latent_dim": 2, **option}
    with pytest.raises(ConfigError, match=re.escape(message)):
        VAE(shape=(1, 2, 2), num_classes=3, net=MLP_NET, optimizer=ADAM, **kwargs)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("channels", [(), (16, 32)])
def test_nets_fit_every_image_shape(shape, channels):
    encoder = Encoder(shape, latent_dim=4, num_labels=10, hidden=(32,), channels=channels)
    decoder = Decoder(shape, latent_dim=4, out_channels=2 * shape[0], num_labels=10, hidden=(32,), channels=channels[::-1])
    labels = torch.eye(10)[:3]
    assert encoder(torch.zeros(3, *shape), labels).shape == (3, 8)
    assert decoder(torch.zeros(3, 4), labels).shape == (3, 2 * shape[0], *shape[1:])


def test_too_many_conv_blocks_for_the_image_is_a_config_error():
    with pytest.raises(ConfigError, match=r"model\.net\.encoder\.channels"):
        Encoder((1, 8, 8), latent_dim=2, channels=(8, 8, 8, 8))
