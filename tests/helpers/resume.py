"""Train a run straight, and again stopped after epoch 2 and resumed from its last checkpoint, for the
bit-identical resume tests of each family."""

from __future__ import annotations

from pathlib import Path

import torch

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
