"""A GAN run stopped after epoch 2 and resumed from its checkpoint ends with exactly the weights of an
uninterrupted run: G, D, both optimizers, the EMA generator, the n_critic phase and the RNG all resume."""

from __future__ import annotations

import pytest
import torch

from tests.helpers.config import CPU_QUICK
from tests.helpers.resume import straight_halfway_resumed


@pytest.mark.slow
def test_resume_after_epoch_2_ends_with_identical_weights(tmp_path):
    common = [*CPU_QUICK, "experiment=digits_cgan", "callbacks=default", "trainer.max_epochs=4", "trainer.deterministic=true",
              "seed=3", "data.train_fraction=0.3", "model.n_critic=3", "test=false"]
    straight, halfway, again = straight_halfway_resumed(tmp_path, common)
    assert straight.keys() == again.keys()
    assert any(k.startswith("generator_ema.") for k in straight)
    for name in straight:
        assert torch.equal(straight[name], again[name]), name
    assert not torch.equal(halfway["generator_ema.n_averaged"], straight["generator_ema.n_averaged"])  # it did train on
