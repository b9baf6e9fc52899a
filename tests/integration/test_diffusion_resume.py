"""A DDPM run stopped after epoch 2 and resumed from its checkpoint ends with exactly the weights of an
uninterrupted run: the denoiser, its EMA copy, the optimizer and the RNG (noise, timesteps, dropped labels)
all resume."""

from __future__ import annotations

import pytest
import torch

from tests.helpers.config import CPU_QUICK
from tests.helpers.resume import straight_halfway_resumed


@pytest.mark.slow
def test_resume_after_epoch_2_ends_with_identical_weights(tmp_path):
    common = [*CPU_QUICK, "experiment=digits_ddpm_cond", "callbacks=default", "trainer.max_epochs=4", "trainer.deterministic=true",
              "seed=3", "data.train_fraction=0.3", "model.denoiser.width=64", "test=false"]
    straight, halfway, again = straight_halfway_resumed(tmp_path, common)
    assert straight.keys() == again.keys()
    assert any(k.startswith("denoiser_ema.") for k in straight)
    for name in straight:
        assert torch.equal(straight[name], again[name]), name
    assert not torch.equal(halfway["denoiser_ema.n_averaged"], straight["denoiser_ema.n_averaged"])  # it did train on
    assert not torch.equal(halfway["denoiser.stem.weight"], straight["denoiser.stem.weight"])
