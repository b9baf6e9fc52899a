"""Timing pieces shared by the benchmarks."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytorch_lightning as pl
import torch


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so wall time measures the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def restored_environment() -> Iterator[None]:
    """`os.environ` as it was on entry, afterwards: what one arm sets (a Trainer of mlgen hides absent GPUs,
    mlgen/tasks/gpu_probes.py) does not reach the arms after it."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def plain_pytorch_environment() -> Iterator[None]:
    """The environment of a program that never imported Lightning, for the plain arms. Lightning's import set
    PYTORCH_NVML_BASED_CUDA_CHECK=1 in this process, and on a CUDA build of torch without a GPU that makes
    every optimizer step probe NVML (mlgen/tasks/gpu_probes.py): a plain loop in a process of its own pays
    none of it, so it must not pay it here either."""
    with restored_environment():
        os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
        yield


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
