"""Progress for batch jobs: a plain line per epoch (and every N % of a long one) instead of TQDM frames.

Slurm writes a job's stdout to a file, where TQDM's carriage-return redraws pile up into tens of
kilobytes of bars; a person reading `slurm-<id>.out` wants one line now and then. The progress bar of
`callbacks.progress_bar` is chosen by where stdout goes: TQDM on a terminal, these lines elsewhere.
Written by hand: Lightning's bars (TQDM, rich) always redraw in place.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ProgressBar, TQDMProgressBar


class ProgressForStdout:
    """`_target_` of `callbacks.progress_bar`: builds a TQDMProgressBar (redrawn every `refresh_rate`
    steps) on a terminal, a LogLineProgress (a line every `every_percent` %) when stdout is a file.
    A class, not a function, so that mlgen's config checks see its options."""

    def __new__(cls, refresh_rate: int = 10, every_percent: int = 25) -> ProgressBar:  # type: ignore[misc]
        if sys.stdout.isatty():
            return TQDMProgressBar(refresh_rate=refresh_rate)
        return LogLineProgress(every_percent=every_percent)


class LogLineProgress(ProgressBar):
    """Prints (rank 0) `epoch E/N: P% (step S, T s) metrics...` at `every_percent` steps of an epoch that
    takes more than a minute, and `epoch E/N done` with the epoch's metrics at its end."""

    def __init__(self, every_percent: int = 25) -> None:
        super().__init__()
        self.every_percent = every_percent
        self._enabled = True
        self._epoch_started = 0.0
        self._next_percent = every_percent

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _line(self, trainer: pl.Trainer, what: str) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        metrics = self.get_metrics(trainer, trainer.lightning_module)
        metrics.pop("v_num", None)
        shown = "  ".join(f"{name} {value:.4g}" if isinstance(value, float) else f"{name} {value}"
                          for name, value in sorted(metrics.items()))
        max_epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        print(f"epoch {trainer.current_epoch + 1}/{max_epochs} {what} (step {trainer.global_step}, "
              f"{time.monotonic() - self._epoch_started:.1f} s)  {shown}".rstrip(), flush=True)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.on_train_epoch_start(trainer, pl_module)  # a run resumed mid-epoch gets no epoch start

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_started = time.monotonic()
        self._next_percent = self.every_percent

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        total = self.total_train_batches
        if not self.every_percent or not isinstance(total, int) or total <= 0:
            return
        percent = 100 * (batch_idx + 1) // total
        if percent >= self._next_percent and percent < 100:
            self._next_percent = (percent // self.every_percent + 1) * self.every_percent
            if time.monotonic() - self._epoch_started > 60:  # short epochs: their end line is enough
                self._line(trainer, f"{percent}%")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._line(trainer, "done")
