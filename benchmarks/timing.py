"""Timing pieces shared by the benchmarks."""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
import torch


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so wall time measures the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class EpochTimer(pl.Callback):
    """Samples/s over the training batches of epochs 1.. (epoch 0 warms up), from the epoch start to
    the end of its last batch: validation and checkpointing are not counted."""

    def __init__(self) -> None:
        self.samples, self.seconds, self._start, self._n = 0, 0.0, 0.0, 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        sync(pl_module.device)
        self._start, self._n = time.perf_counter(), 0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._n += len(batch[1])
        if batch_idx == trainer.num_training_batches - 1 and trainer.current_epoch > 0:
            sync(pl_module.device)  # the end-of-epoch checkpoint that other callbacks write is not counted
            self.samples += self._n
            self.seconds += time.perf_counter() - self._start

    def samples_per_second(self) -> float:
        return self.samples / self.seconds
