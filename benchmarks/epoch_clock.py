"""Where each epoch of an `mlgen-train` run spends its wall time (case (f) of benchmarks/throughput.py).

`EpochClock` is added to a real `mlgen-train` run as a callback on the command line
(`+callbacks.epoch_clock._target_=benchmarks.epoch_clock.EpochClock`). It splits the wall time of every
epoch after the first (from one epoch's start to the next, the last ending at `on_train_end`) into
exclusive shares: the time inside a call it wraps counts once, for the innermost wrapped call.

- training steps: from the epoch start to the end of its last batch (what case (c) times);
- validation loop: Lightning's validation loop over the val batches;
- metrics: torchmetrics `update`/`forward`/`compute` of every metric the module holds;
- self.log: the module's `log`/`log_dict` calls (Lightning's logger connector per call);
- logger writes: every logger's `log_metrics`/`save`;
- checkpoint writes: `trainer.save_checkpoint` (state dicts, hooks, the atomic write);
- progress display: every hook of the progress-bar callback;
- other: the rest (epoch-end hooks, LR schedulers, Lightning's loop bookkeeping and epoch-end reduction).

Timing is by wrapping public methods on the objects of this one run, which is instrumentation for the
benchmark only and never part of mlgen. Written by hand: Lightning's SimpleProfiler times hooks, not
checkpoint writes, metric updates or logger calls, and its numbers are inclusive.
"""

from __future__ import annotations

import functools
import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ProgressBar
from torchmetrics import Metric

CATEGORIES = ("training steps", "validation loop", "metrics", "self.log", "logger writes", "checkpoint writes",
              "progress display", "other")


class ExclusiveTimer:
    """Wall time by category, each moment counted once: for the innermost open region, else the base."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._stack = ["other"]
        self._mark = time.perf_counter()

    def _flush(self) -> None:
        now = time.perf_counter()
        self.totals[self._stack[-1]] += now - self._mark
        self._mark = now

    def set_base(self, category: str) -> None:
        """The category of time spent outside any wrapped call from now on."""
        self._flush()
        self._stack[0] = category

    def wrap(self, category: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._flush()
            self._stack.append(category)
            try:
                return fn(*args, **kwargs)
            finally:
                self._flush()
                self._stack.pop()

        return timed

    def take(self) -> dict[str, float]:
        """The totals since the last `take`, and start again from zero."""
        self._flush()
        totals = dict(self.totals)
        self.totals.clear()
        return totals


def _wrap_methods(timer: ExclusiveTimer, obj: Any, category: str, names: list[str]) -> None:
    for name in names:
        setattr(obj, name, timer.wrap(category, getattr(obj, name)))


class EpochClock(pl.Callback):
    """Writes `out` (JSON): per timed epoch its samples, wall seconds and seconds per category."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.timer = ExclusiveTimer()
        self.epochs: list[dict[str, Any]] = []
        self._epoch_start: float | None = None
        self._samples = 0
        self._timed = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        _wrap_methods(self.timer, trainer, "checkpoint writes", ["save_checkpoint"])
        for logger in trainer.loggers:
            _wrap_methods(self.timer, logger, "logger writes", ["log_metrics", "save"])
        for callback in trainer.callbacks:
            if isinstance(callback, ProgressBar):
                _wrap_methods(self.timer, callback, "progress display",
                              [n for n in dir(type(callback)) if n.startswith("on_") and callable(getattr(callback, n))])
        for module in pl_module.modules():
            if isinstance(module, Metric):
                _wrap_methods(self.timer, module, "metrics", ["update", "compute", "forward"])
        _wrap_methods(self.timer, pl_module, "self.log", ["log", "log_dict"])

    def _close_epoch(self) -> None:
        if self._epoch_start is None:
            return
        totals = self.timer.take()
        if self._timed:
            wall = time.perf_counter() - self._epoch_start
            self.epochs.append({"samples": self._samples, "wall_s": wall, **{c: totals.get(c, 0.0) for c in CATEGORIES}})

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close_epoch()
        self._timed = trainer.current_epoch > 0  # epoch 0 warms up
        self._epoch_start, self._samples = time.perf_counter(), 0
        self.timer.set_base("training steps")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._samples += len(batch[1])
        if batch_idx == trainer.num_training_batches - 1:
            self.timer.set_base("other")

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.timer.set_base("validation loop")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.timer.set_base("other")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close_epoch()
        self._epoch_start = None
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps({"epochs": self.epochs}, indent=1))
