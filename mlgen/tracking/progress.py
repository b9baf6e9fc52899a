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
    takes more than a minute, and `epoch E/N done` with the epoch's metrics at its end: the epoch's training
    means and validation values, not the last logged step's values.

    The module logs its training means in its own `on_train_epoch_end`, which Lightning runs after this
    callback's, so the end-of-epoch line is printed when they are in: at the next epoch's start, at the end
    of training, or when training stops on an error."""

    def __init__(self, every_percent: int = 25) -> None:
        super().__init__()
        self.every_percent = every_percent
        self._enabled = True
        self._epoch_started = 0.0
        self._next_percent = every_percent
        self._ended: tuple[int, int, float] | None = None  # epoch, global step, seconds of an epoch not yet printed

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _line(self, trainer: pl.Trainer, what: str, epoch: int, step: int, seconds: float) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        metrics = self.get_metrics(trainer, trainer.lightning_module)
        metrics.pop("v_num", None)
        if what == "done":  # a step's values are noise next to the epoch's means, which Lightning names without suffix
            metrics = {name: value for name, value in metrics.items()
                       if not (name.endswith("_step") and name.removesuffix("_step") in metrics)}
        shown = "  ".join(f"{name} {value:.4g}" if isinstance(value, float) else f"{name} {value}"
                          for name, value in sorted(metrics.items()))
        max_epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        print(f"epoch {epoch + 1}/{max_epochs} {what} (step {step}, {seconds:.1f} s)  {shown}".rstrip(), flush=True)

    def _print_ended_epoch(self, trainer: pl.Trainer) -> None:
        if self._ended is not None:
            ended, self._ended = self._ended, None
            self._line(trainer, "done", *ended)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.on_train_epoch_start(trainer, pl_module)  # a run resumed mid-epoch gets no epoch start

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._print_ended_epoch(trainer)
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
            seconds = time.monotonic() - self._epoch_started
            if seconds > 60:  # short epochs: their end line is enough
                self._line(trainer, f"{percent}%", trainer.current_epoch, trainer.global_step, seconds)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._ended = (trainer.current_epoch, trainer.global_step, time.monotonic() - self._epoch_started)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._print_ended_epoch(trainer)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._print_ended_epoch(trainer)
