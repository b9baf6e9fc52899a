"""Train a run straight, and again stopped after epoch 2 (or crashed inside an epoch) and resumed from its
checkpoint, for the bit-identical resume tests of each family."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mlgen.tasks.report import RunResult
from mlgen.tasks.train import train
from tests.helpers.config import compose_config

StateDict = dict[str, torch.Tensor]


def _weights(path: Path) -> StateDict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def straight_halfway_resumed(tmp_path: Path, overrides: list[str]) -> tuple[StateDict, StateDict, StateDict]:
    """Final weights of the uninterrupted run, of the run stopped after epoch 2, and of its resumed run."""
    train(compose_config("train", overrides, tmp_path / "straight"))
    interrupted = tmp_path / "interrupted"
    train(compose_config("train", [*overrides, "+callbacks.stop._target_=tests.helpers.callbacks.StopAfterEpochs",
                                   "+callbacks.stop.epochs=2"], interrupted))
    resumed = tmp_path / "resumed"
    # the stopping callback of the interrupted run is in its checkpoint's config, outside mlgen's allowlist;
    # a resume takes that config, so the resumed run turns the callback off
    train(compose_config("train", [*overrides, f"ckpt_path={interrupted / 'checkpoints' / 'last.ckpt'}", "++callbacks.stop=null",
                                   "trusted_targets=[tests.helpers.callbacks.StopAfterEpochs]"], resumed))
    return tuple(_weights(run / "checkpoints" / "last.ckpt") for run in (tmp_path / "straight", interrupted, resumed))


CRASH_TRUSTED = "trusted_targets=[tests.helpers.callbacks.CrashMidEpoch]"


def crash_mid_epoch_and_resume(tmp_path: Path, overrides: list[str], step: int, hook: str = "on_train_batch_end",
                               mid: Path | None = None) -> RunResult:
    """Run `overrides` until `CrashMidEpoch` saves a checkpoint at optimizer step `step` (in Lightning's `hook`)
    and exits like a killed job, then resume a new run from that checkpoint (`mid`); the resumed run's result."""
    mid = mid or tmp_path / "mid.ckpt"
    crash = ["+callbacks.crash._target_=tests.helpers.callbacks.CrashMidEpoch", f"+callbacks.crash.step={step}",
             f"+callbacks.crash.path={mid}", f"+callbacks.crash.hook={hook}"]
    with pytest.raises(SystemExit):
        train(compose_config("train", [*overrides, *crash], tmp_path / "crashed"))
    return train(compose_config("train", [*overrides, f"ckpt_path={mid}", "++callbacks.crash=null", CRASH_TRUSTED],
                                tmp_path / "resumed"))
