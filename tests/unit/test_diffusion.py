"""DDPM pieces with exact expectations: the schedules, DDIM against an oracle denoiser, classifier-free
guidance's mix, label dropout, the per-global-batch draws, the nets' shapes, and bad options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mlgen.distributed.noise import global_batch_rows
from mlgen.errors import ConfigError
from mlgen.models.diffusion import DDPM
from mlgen.models.diffusion.sampler import ddim_sample, ddim_timesteps
from mlgen.models.diffusion.schedule import alphas_cumprod
from mlgen.nets.denoisers import MLPDenoiser
from mlgen.nets.unet import UNet

ADAM = {"_target_": "torch.optim.Adam", "lr": 1e-3}
MLP = {"_target_": "mlgen.nets.denoisers.MLPDenoiser", "width": 32, "depth": 1}


def make_ddpm(**kwargs) -> DDPM:
    args = {"shape": (1, 8, 8), "num_classes": 10, "denoiser": MLP, "optimizer": ADAM, "timesteps": 100, **kwargs}
    return DDPM(**args)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_schedules_fall_from_almost_clean_to_almost_pure_noise(schedule):
    bar = alphas_cumprod(schedule, 1000)
    assert bar.shape == (1000,) and bar.dtype == torch.float32
    assert (bar[1:] < bar[:-1]).all() and 0.99 < bar[0] < 1 and bar[-1] < 1e-4
    if schedule == "linear":  # Ho et al.: alpha_bar_0 = 1 - beta_start
        assert bar[0].item() == pytest.approx(1 - 1e-4)
    else:  # cosine: half signal power at half time; linear: far less
        assert bar[499].item() == pytest.approx(0.5, abs=0.01) and bar[499] > 5 * alphas_cumprod("linear", 1000)[499]


def test_ddim_timesteps_are_distinct_and_end_at_zero():
    assert ddim_timesteps(1000, 5).tolist() == [999, 749, 500, 250, 0]
    assert ddim_timesteps(10, 10).tolist() == list(range(9, -1, -1))
    assert ddim_timesteps(10, 1).tolist() == [9]


@pytest.mark.parametrize(("steps", "eta"), [(1, 0.0), (7, 0.0), (50, 1.0), (100, 0.5)])
def test_ddim_with_an_oracle_denoiser_lands_on_the_data(steps, eta):
    # data = one point x*: the exact noise of x_t is (x_t - sqrt(bar) x*) / sqrt(1 - bar), so every step
    # predicts x* and DDIM must end exactly there, whatever the steps and eta
    bar = alphas_cumprod("linear", 100)
    target = torch.linspace(-0.9, 0.9, 12).view(1, 3, 4)
    calls = []

    def oracle(x, t):
        calls.append(t)
        b = bar[t].view(-1, 1, 1)
        return (x - b.sqrt() * target) / (1 - b).sqrt()

    out = ddim_sample(oracle, torch.randn, (5, 3, 4), bar, steps, eta)
    torch.testing.assert_close(out, target.expand(5, 3, 4), atol=1e-4, rtol=0)
    assert len(calls) == steps and calls[0].tolist() == [99] * 5
    assert calls[-1].tolist() == [0 if steps > 1 else 99] * 5


def test_classifier_free_guidance_mixes_the_conditional_and_null_predictions():
    ddpm = make_ddpm(conditional=True, label_dropout=0.1, guidance_scale=3.0)

    class ByLabel(nn.Module):  # predicts the label everywhere, so the mix is easy to compute
        def forward(self, x, t, labels):
            return labels.float().view(-1, 1, 1, 1).expand_as(x)

    x, t = torch.zeros(2, 1, 8, 8), torch.tensor([5, 5])
    guided = ddpm.predict_noise(ByLabel(), x, t, torch.tensor([2, 4]))
    # null label = 10: 10 + 3 * (y - 10)
    assert guided[:, 0, 0, 0].tolist() == [10 + 3 * (2 - 10), 10 + 3 * (4 - 10)]
    ddpm.configure_sampling(guidance_scale=1.0)
    assert ddpm.predict_noise(ByLabel(), x, t, torch.tensor([2, 4]))[:, 0, 0, 0].tolist() == [2, 4]


def test_label_dropout_replaces_that_share_of_labels_with_the_null_label():
    torch.manual_seed(0)
    labels = make_ddpm(conditional=True, label_dropout=0.25).training_labels(torch.arange(20000) % 10)
    dropped = labels == 10
    assert 0.24 < dropped.float().mean() < 0.26
    assert torch.equal(labels[~dropped], (torch.arange(20000) % 10)[~dropped])
    assert make_ddpm().training_labels(torch.arange(4)) is None  # unconditional: no labels reach the net


def test_one_process_draws_exactly_what_it_would_without_ddp():
    torch.manual_seed(1)
    rows = global_batch_rows(lambda m: torch.randint(1000, (m,)), 6)
    torch.manual_seed(1)
    assert torch.equal(rows, torch.randint(1000, (6,)))


def test_loss_is_the_noise_regression_error_and_training_lowers_it():
    torch.manual_seed(0)
    ddpm = make_ddpm()
    x = (torch.rand(1, 1, 8, 8) * 2 - 1).expand(64, -1, -1, -1)  # one image: its noise is learnable
    opt = torch.optim.Adam(ddpm.denoiser.parameters(), lr=3e-3)
    def loss_at_fixed_draws() -> float:
        torch.manual_seed(1)
        return ddpm.diffusion_loss(x.repeat(8, 1, 1, 1), None).item()

    first = loss_at_fixed_draws()
    assert 0.5 < first < 2  # an untrained net predicts ~0 for unit-variance noise
    for _ in range(200):
        opt.zero_grad()
        ddpm.diffusion_loss(x, None).backward()
        opt.step()
    assert loss_at_fixed_draws() < 0.65 * first  # seen: 1.13 -> 0.61 (tiny-noise timesteps stay hard)


def test_sample_returns_images_for_requested_labels_with_the_configured_steps(monkeypatch):
    ddpm = make_ddpm(conditional=True, label_dropout=0.1, guidance_scale=2.0, ema_decay=0.9, sampling_steps=4)
    seen = []
    monkeypatch.setattr(ddpm.denoiser_ema.module, "forward", lambda x, t, labels: seen.append(labels) or torch.zeros_like(x))
    out = ddpm.sample(3, torch.tensor([1, 2, 3]))
    assert out.shape == (3, 1, 8, 8) and out.abs().max() <= 1
    assert len(seen) == 4 and seen[0].tolist() == [1, 2, 3, 10, 10, 10]  # EMA net; guided: labels then null
    with ddpm.using_steps(2):
        ddpm.sample(3, torch.tensor([1, 2, 3]))
    assert len(seen) == 6
    with pytest.raises(ValueError, match="labels from 0 to 10 are invalid"):
        ddpm.sample(2, torch.tensor([0, 10]))


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_unet_predicts_noise_shaped_like_its_input(shape):
    net = UNet(shape, num_labels=11, channels=(8, 16, 16), attention_levels=(1,), groups=4)
    x = torch.randn(2, *shape)
    out = net(x, torch.tensor([0, 999]), torch.tensor([3, 10]))
    assert out.shape == x.shape
    assert not torch.allclose(out, net(x, torch.tensor([0, 999]), torch.tensor([4, 10])))  # the label matters


@pytest.mark.parametrize("shape", [(13,), (1, 8, 8), (2, 5, 7)])
def test_mlp_denoiser_takes_any_shape(shape):
    net = MLPDenoiser(shape, width=16, depth=2)
    t = torch.tensor([1, 2, 3])
    assert net(torch.randn(3, *shape), t).shape == (3, *shape)


def test_unet_refuses_levels_the_image_cannot_halve_and_rows():
    with pytest.raises(ConfigError, match=r"model.denoiser.channels=\[8, 8, 8, 8\] is invalid: .* divisible by 8, but the images are 28x28. Fix: give 3 or fewer"):
        UNet((1, 28, 28), channels=(8, 8, 8, 8))
    with pytest.raises(ConfigError, match=r"data.shape=\[13\] is invalid: the U-Net denoiser"):
        UNet((13,))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"schedule": "sigmoid"}, r"model.schedule='sigmoid' is invalid: it must be one of \['linear', 'cosine'\]"),
        ({"timesteps": 1}, "model.timesteps=1 is invalid: it must be an integer >= 2"),
        ({"beta_start": 0.02, "beta_end": 0.01}, "model.beta_end=0.01 is invalid: it must exceed model.beta_start=0.02"),
        ({"sampling_steps": 0}, "model.sampling_steps=0 is invalid: it must be an integer >= 1"),
        ({"sampling_steps": 101}, "model.sampling_steps=101 is invalid: DDIM takes at most model.timesteps=100 steps"),
        ({"val_sampling_steps": 500}, "model.val_sampling_steps=500 is invalid: it must be at most model.timesteps=100"),
        ({"val_samples": 0}, "model.val_samples=0 is invalid"),
        ({"eta": 1.5}, r"model.eta=1.5 is invalid: it must be a finite number in \[0, 1\]"),
        ({"guidance_scale": -1.0, "conditional": True, "label_dropout": 0.1}, "model.guidance_scale=-1.0 is invalid"),
        ({"guidance_scale": float("nan"), "conditional": True, "label_dropout": 0.1}, "model.guidance_scale=nan is invalid"),
        ({"guidance_scale": 3.0}, "model.guidance_scale=3.0 is invalid: classifier-free guidance needs a class-conditional model"),
        ({"guidance_scale": 3.0, "conditional": True}, "model.guidance_scale=3.0 is invalid: guidance needs the null label"),
        ({"label_dropout": 0.1}, "model.label_dropout=0.1 is invalid: label dropout trains classifier-free guidance"),
        ({"label_dropout": 1.0, "conditional": True}, "model.label_dropout=1.0 is invalid"),
    ],
)
def test_bad_diffusion_options_are_rejected(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        make_ddpm(**kwargs)


def test_configure_sampling_checks_like_the_config():
    ddpm = make_ddpm(conditional=True, label_dropout=0.1)
    ddpm.configure_sampling(sampling_steps=10, eta=1.0, guidance_scale=4.0)
    assert (ddpm.hparams.sampling_steps, ddpm.hparams.eta, ddpm.hparams.guidance_scale) == (10, 1.0, 4.0)
    with pytest.raises(ConfigError, match="model.sampling_steps=1000 is invalid"):
        ddpm.configure_sampling(sampling_steps=1000)
    with pytest.raises(ConfigError, match=r"sampling.guidance_scale=-1 is invalid.*Fix"):
        ddpm.configure_sampling("sampling.", guidance_scale=-1)
    with pytest.raises(ConfigError, match=r"sampling.temperature=0.5 is invalid: a DDPM .* no such sampling option"):
        ddpm.configure_sampling("sampling.", temperature=0.5)
    assert ddpm.hparams.sampling_steps == 10  # a refused change leaves the model as it was


def test_families_without_sampling_options_refuse_them_by_name():
    from mlgen.models.vae import VAE

    vae = VAE(shape=(1, 8, 8), num_classes=10, optimizer=ADAM,
              net={"encoder": {"_target_": "mlgen.nets.vae_nets.Encoder", "hidden": [16]},
                   "decoder": {"_target_": "mlgen.nets.vae_nets.Decoder", "hidden": [16]}})
    vae.configure_sampling("sampling.")  # nothing asked: nothing to refuse
    with pytest.raises(ConfigError, match=r"sampling.guidance_scale=3 is invalid: a VAE draws its samples one way"):
        vae.configure_sampling("sampling.", guidance_scale=3)


def test_validation_quality_sees_every_real_image_but_only_the_budget_of_samples(monkeypatch):
    ddpm = make_ddpm(conditional=True, val_samples=20, val_sampling_steps=3, sampling_steps=7)
    updates, forwards = [], []

    class Recorder:
        def update(self, images, real, labels=None):
            updates.append((real, len(images), None if labels is None else labels.tolist()))

    monkeypatch.setattr(ddpm.denoiser, "forward", lambda x, t, labels: forwards.append(t) or torch.zeros_like(x))
    ddpm.quality = Recorder()
    batch = (torch.zeros(16, 1, 8, 8), torch.arange(16) % 10)
    for _ in range(2):  # two evaluation epochs: the budget starts afresh
        ddpm.on_validation_epoch_start()
        for _ in range(3):
            ddpm._update_quality(batch)
    epoch = [(True, 16, None), (False, 16, batch[1].tolist()), (True, 16, None), (False, 4, batch[1][:4].tolist()), (True, 16, None)]
    assert updates == epoch * 2
    assert len(forwards) == 4 * 3  # val_sampling_steps per sample() call, not sampling_steps
    assert ddpm._sampling_steps == 7  # sample() takes its own steps again afterwards
    updates.clear()
    ddpm.on_test_epoch_start()  # the test split: one sample per real image, sampling_steps each
    for _ in range(3):
        ddpm._update_quality(batch)
    assert [(real, n) for real, n, _ in updates] == [(True, 16), (False, 16)] * 3 and len(forwards) == 4 * 3 + 3 * 7
