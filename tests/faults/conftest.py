"""Shared pieces of the fault-injection suite: a real mlgen checkpoint to start from."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config


@pytest.fixture(scope="session")
def digits_checkpoint(tmp_path_factory) -> Path:
    """`last.ckpt` of a one-epoch digits classifier, trained as mlgen-train would."""
    out = tmp_path_factory.mktemp("digits-run")
    result = train(compose_config("train", [*CPU_QUICK, "trainer.max_epochs=1", "test=false"], out))
    return result.output_dir / "checkpoints" / "last.ckpt"
