"""A DDPM run stopped after epoch 2 and resumed from its checkpoint ends with exactly the weights of an
uninterrupted run: the denoiser, its EMA copy, the optimizer and the RNG (noise, timesteps, dropped labels)
all resume."""

from __future__ import annotations

import pytest
import torch

from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.slow
def test_resume_after_epoch_2_ends_with_identical_weights(tmp_path):
    common = [*CPU_QUICK, "experiment=digits_ddpm_cond", "callbacks=default", "trainer.max_epochs=4", "trainer.deterministic=true",
              "seed=3", "data.train_fraction=0.3", "model.denoiser.width=64", "test=false"]
    train(compose_config("train", common, tmp_path / "straight"))
    interrupted = tmp_path / "interrupted"
    train(compose_config("train", [*common, "+callbacks.stop._target_=tests.helpers.callbacks.StopAfterEpochs",
                                   "+callbacks.stop.epochs=2"], interrupted))
    resumed = tmp_path / "resumed"
    # the stopping callback of the interrupted run is in its checkpoint's config, outside mlgen's allowlist
    train(compose_config("train", [*common, f"ckpt_path={interrupted / 'checkpoints' / 'last.ckpt'}",
                                   "trusted_targets=[tests.helpers.callbacks.StopAfterEpochs]"], resumed))

    straight, again = _weights(tmp_path / "straight" / "checkpoints" / "last.ckpt"), _weights(resumed / "checkpoints" / "last.ckpt")
    assert straight.keys() == again.keys()
    assert any(k.startswith("denoiser_ema.") for k in straight)
    for name in straight:
        assert torch.equal(straight[name], again[name]), name
    halfway = _weights(interrupted / "checkpoints" / "last.ckpt")
    assert not torch.equal(halfway["denoiser_ema.n_averaged"], straight["denoiser_ema.n_averaged"])  # it did train on
    assert not torch.equal(halfway["denoiser.stem.weight"], straight["denoiser.stem.weight"])
