"""Every VAE variant, with both nets, runs three batches of fit/val/test on every image shape, logs its
terms and writes image grids of the right size."""

import math

import pytest

from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config
from tests.helpers.grids import assert_readable_grid

VARIANTS = {
    "vae": ["model=vae"],
    "cvae": ["model=cvae"],
    # beta 4 reached after 4 steps: the third batch (global step 2) trains with beta 2
    "beta_vae": ["model=beta_vae", "model.beta=4.0", "model.beta_warmup_steps=4"],
    "gaussian_learned": ["model=vae", "model.likelihood=gaussian", "model.gaussian_std=learned"],
    "gaussian_fixed": ["model=vae", "model.likelihood=gaussian", "model.gaussian_std=0.1"],
}
# the speed option that changes tensors (compile is the classifier tests' business: slow to build on CPU)
EXTRA = {("vae", "vae_conv"): ["model.channels_last=true"]}
SIDE = {"digits": 8, "mnist": 28, "cifar10": 32}


def data_overrides(data, variant, request):
    if data == "digits":
        return ["data=digits"]
    if data == "mnist":  # binarized for the Bernoulli likelihood, grey levels for the Gaussian one
        return ["data=mnist", f"data.root={request.getfixturevalue('mnist_like_root')}",
                f"data.binarize={str(not variant.startswith('gaussian')).lower()}"]
    return ["data=cifar10", f"data.root={request.getfixturevalue('cifar_root')}"]


@pytest.mark.parametrize("data", sorted(SIDE))
@pytest.mark.parametrize("net", ["vae_mlp", "vae_conv"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_fast_dev_run(variant, net, data, tmp_path, request):
    overrides = [*CPU_QUICK, *VARIANTS[variant], *EXTRA.get((variant, net), []), f"model/net={net}", *data_overrides(data, variant, request),
                 "callbacks=generative", "+trainer.fast_dev_run=3", "model.iwae_samples=4", "model.iwae_chunk=3",
                 "data.batch_size=16", "data.eval_batch_size=16", "callbacks.image_grid.n_samples=8",
                 "callbacks.image_grid.n_reconstructions=8", "callbacks.image_grid.nrow=4"]
    run = tmp_path / "run"
    result = train(compose_config("train", overrides, run))
    metrics = result.metrics
    for name in ("train/loss_step", "val/elbo", "test/elbo", "test/recon", "test/kl", "test/iwae_nll"):
        assert math.isfinite(metrics[name]), name
    assert metrics["test/kl"] >= 0
    assert metrics["test/elbo"] == pytest.approx(-(metrics["test/recon"] + metrics["test/kl"]), rel=1e-4)
    assert metrics["train/beta_step"] == (2.0 if variant == "beta_vae" else 1.0)  # the last step's beta
    assert metrics["train/beta"] == 1.0  # the epoch mean: 0, 1, 2 under warm-up, else 1, 1, 1
    side = SIDE[data]
    # 8 images in rows of 4 (a CVAE's classes over each one); originals over reconstructions, rows named
    assert_readable_grid(run / "images" / "samples_epoch000.png", side, 4, 2, "captions" if variant == "cvae" else None)
    assert_readable_grid(run / "images" / "reconstructions_epoch000.png", side, 4, 4, "left")
