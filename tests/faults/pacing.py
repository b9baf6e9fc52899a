"""A callback that tells a test where training is, so a real signal can be sent mid-epoch without guessing from
wall time: from a given step on, it touches a marker file and slows every step down, so the rest of the epoch
lasts far longer than the test takes to send the signal, however loaded the machine is."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl


class SlowFromStep(pl.Callback):
    def __init__(self, step: int, marker: str, seconds_per_step: float = 0.05) -> None:
        self.step, self.marker, self.seconds_per_step = step, Path(marker), seconds_per_step

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if trainer.global_step >= self.step:
            self.marker.touch()
            time.sleep(self.seconds_per_step)
