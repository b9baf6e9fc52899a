"""Callbacks that tests add through the config (`+callbacks.<name>._target_=tests.helpers.callbacks...`)."""

from __future__ import annotations

import pytorch_lightning as pl


class StopAfterEpochs(pl.Callback):
    """Stop training after `epochs` epochs, as an interrupted job would (checkpoints are written as usual)."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


class CrashMidEpoch(pl.Callback):
    """Write `path` at optimizer step `step` from the hook `hook`, then die as a preempted job would."""

    def __init__(self, step: int, path: str, hook: str) -> None:
        self.step, self.path, self.hook = step, path, hook

    def _maybe_crash(self, trainer: pl.Trainer, hook: str) -> None:
        if hook == self.hook and trainer.global_step == self.step:
            trainer.save_checkpoint(self.path)
            raise SystemExit("preempted")

    def on_train_batch_start(self, trainer: pl.Trainer, *args: object) -> None:
        self._maybe_crash(trainer, "on_train_batch_start")

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        self._maybe_crash(trainer, "on_train_batch_end")
