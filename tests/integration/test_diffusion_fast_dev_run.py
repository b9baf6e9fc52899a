"""The diffusion experiments compose and run three batches of fit/val/test on every image shape (the U-Net
on 28x28 MNIST and 32x32 CIFAR-10, the MLP denoiser on 8x8 digits), both schedules, with and without
guidance, and write sample grids of the right size."""

import math

import pytest

from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config
from tests.helpers.grids import assert_readable_grid

TINY_UNET = ["model.denoiser.channels=[8,16]", "model.denoiser.attention_levels=[1]", "model.denoiser.groups=4"]
CASES = {
    "digits": (8, ["experiment=digits_ddpm"]),
    "digits_cond": (8, ["experiment=digits_ddpm_cond", "model.schedule=linear"]),
    "mnist_cond": (28, ["experiment=mnist_ddpm_cond", *TINY_UNET]),
    "cifar10": (32, ["experiment=mnist_ddpm", "data=cifar10", *TINY_UNET]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fast_dev_run(case, tmp_path, request):
    side, overrides = CASES[case]
    if side == 28:
        overrides = [*overrides, f"data.root={request.getfixturevalue('mnist_like_root')}"]
    elif side == 32:
        overrides = [*overrides, f"data.root={request.getfixturevalue('cifar_root')}"]
    run = tmp_path / "run"
    result = train(compose_config("train", [*CPU_QUICK, *overrides, "+trainer.fast_dev_run=3", "data.batch_size=16",
                                            "data.eval_batch_size=16", "model.sampling_steps=5", "callbacks.image_grid.n_samples=8",
                                            "callbacks.image_grid.nrow=4"], run))
    for name in ("train/loss_step", "val/loss", "test/loss"):
        assert math.isfinite(result.metrics[name]) and 0 < result.metrics[name] < 5, name
    assert_readable_grid(run / "images" / "samples_epoch000.png", side, 4, 2, "captions" if case.endswith("_cond") else None)
