"""Every GAN variant runs two or three batches of fit/val/test on every image shape (digits with the MLP and
the DCGAN pair, 28x28 MNIST-like, 32x32 CIFAR-like): the right optimizer steps happen, the EMA
generator follows the generator steps, and image grids of the right size are written."""

from __future__ import annotations

import json
import math

import pytest

from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config
from tests.helpers.grids import assert_readable_grid

VARIANTS = {
    "dcgan_bce": ["model=dcgan"],
    "hinge_sn_channels_last": ["model=dcgan", "model.loss=hinge", "model.discriminator.spectral_norm=true",
                               "model.channels_last=true"],
    "wgan_gp": ["model=wgan_gp", "model.n_critic=2"],
    "cgan_projection": ["model=cgan"],
    "cgan_concat": ["model=cgan", "model.discriminator.conditioning=concat"],
    "no_ema": ["model=dcgan", "model.ema_decay=null"],
}
DATA = {  # name: (overrides, root fixture, image side)
    "digits_mlp": (["data=digits", "model/gan_nets=mlp"], None, 8),
    "digits_dcgan": (["data=digits"], None, 8),
    "mnist": (["data=mnist"], "mnist_like_root", 28),
    "cifar10": (["data=cifar10"], "cifar_root", 32),
}
# fast_dev_run=N stops after N optimizer steps, and a GAN makes one D step per batch plus one G step
# per n_critic batches: 4 steps are batches D+G, D+G (n_critic=1) or D, D+G, D (n_critic=2).
STEPS = 4


@pytest.mark.parametrize("data", sorted(DATA))
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_fast_dev_run(variant, data, tmp_path, request):
    data_overrides, root_fixture, side = DATA[data]
    if root_fixture:
        data_overrides = [*data_overrides, f"data.root={request.getfixturevalue(root_fixture)}"]
    run = tmp_path / "run"
    overrides = [*CPU_QUICK, *VARIANTS[variant], *data_overrides, "callbacks=generative", f"+trainer.fast_dev_run={STEPS}",
                 "data.batch_size=8", "model.generator.width=8", "model.discriminator.width=8",
                 "callbacks.image_grid.n_samples=8", "callbacks.image_grid.nrow=4",
                 "+callbacks.probe._target_=tests.helpers.gan_probe.GANProbe"]
    if data == "digits_mlp":
        overrides = [o for o in overrides if ".width=" not in o]
    metrics = train(compose_config("train", overrides, run)).metrics
    assert math.isfinite(metrics["train/d_loss_step"]) and math.isfinite(metrics["train/g_loss_step"])
    if variant == "wgan_gp":
        assert metrics["train/gp_step"] >= 0

    records = json.loads((run / "probe_rank0.json").read_text())["records"]
    ends = [r for r in records if r["event"] == "batch_end"]
    batches, g_steps = (3, 1) if variant == "wgan_gp" else (2, 2)
    assert [r["step"] for r in ends] == ([1, 3, 4] if variant == "wgan_gp" else [2, 4])
    assert len({r["d"] for r in ends}) == batches  # D changed at every batch
    initial_g = records[0]["g"]  # recorded before the first optimizer step
    g_after = [initial_g] + [r["g"] for r in ends]
    changed = [a != b for a, b in zip(g_after, g_after[1:])]
    assert changed == ([False, True, False] if variant == "wgan_gp" else [True, True])  # G moves on G steps only
    if variant == "no_ema":
        assert "ema" not in ends[-1]
    else:
        assert ends[-1]["ema_updates"] == g_steps

    # 8 samples in rows of 4; a cGAN's classes 0-7 over each image (no row or column holds one class)
    assert_readable_grid(run / "images" / "samples_epoch000.png", side, 4, 2, "captions" if variant.startswith("cgan") else None)
