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
