"""`last.ckpt` that always holds the latest state, for resuming."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint

from mlgen.config.checks import check_int, require

KEY = "callbacks.last_checkpoint.every_n_epochs"


def last_checkpoint_in(run_dir: str | Path) -> Path:
    """The absolute path of a run dir's `last.ckpt`, where `callbacks.last_checkpoint` writes it by default:
    what a resume, `mlgen-synth` and the end-of-run messages point at."""
    return Path(run_dir).resolve() / "checkpoints" / "last.ckpt"


class LatestCheckpoint(ModelCheckpoint):
    """Writes `<dirpath>/<filename>.ckpt` at every epoch end, whatever the monitored metric did and whether or
    not the epoch validated.

    Lightning's `save_last=True` refreshes `last.ckpt` only when the monitored checkpoint saves a new
    best, so a run resumed from it could lose epochs. A subclass rather than a second ModelCheckpoint:
    its state key (class name + options) must differ from the monitored one's, which it would not when
    the model monitors nothing (GANs).
    """

    def __init__(self, dirpath: str, filename: str = "last", every_n_epochs: int = 1) -> None:
        # At the end of every training epoch (after that epoch's validation, if any): left to Lightning, a
        # checkpoint without a monitor saves only after validation, so trainer.check_val_every_n_epoch=5 left
        # last.ckpt up to 4 epochs behind, and behind the trained weights at the end of the run.
        # `every_n_epochs`: for runs of many one-step epochs (experiment=breast_cancer_tvae), where a save per epoch
        # costs more than the step
        check_int(KEY, every_n_epochs, 1, example=1)
        super().__init__(dirpath=dirpath, filename=filename, monitor=None, save_top_k=1, enable_version_counter=False,
                         save_on_train_epoch_end=True, every_n_epochs=every_n_epochs)
        self.every_n = every_n_epochs

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Saving every n epochs must still save the last one, so n must divide trainer.max_epochs."""
        super().setup(trainer, pl_module, stage)
        epochs: Any = trainer.max_epochs
        require(self.every_n == 1 or (isinstance(epochs, int) and epochs > 0 and epochs % self.every_n == 0), KEY,
                self.every_n, f"trainer.max_epochs={epochs} is not a multiple of it, so the last epochs would never reach "
                "last.ckpt (nor mlgen-sample, mlgen-eval or a resume)",
                f"set {KEY} to a divisor of trainer.max_epochs (e.g. {KEY}=${{trainer.max_epochs}}) or 1")
