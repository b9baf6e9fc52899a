"""Case (e): Lightning's own training loop with nothing of mlgen in it, the bound for mlgen's Trainer.

Same net, loss, optimizer, precision and in-memory batches as case (c), but no logging, metrics, LR
scheduler, checkpoints or other callbacks: (c)/(e) is mlgen's own overhead, (e)/(a) Lightning's.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from benchmarks.families import Loss
from benchmarks.timing import EpochTimer
from mlgen.config.instantiate import instantiate_model
from mlgen.data.in_memory import EpochPermutation, InMemoryLoader


class BareLightning(pl.LightningModule):
    def __init__(self, cfg: Any, loss: Loss, x: torch.Tensor, y: torch.Tensor) -> None:
        super().__init__()
        self.model = instantiate_model(cfg.model)
        self.loss, self.x, self.y, self.batch_size = loss, x, y, cfg.data.batch_size

    def configure_model(self) -> None:
        self.model.configure_model()  # model.compile / model.channels_last, as in case (c)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.loss(self.model, *batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.model.make_optimizer(self.model.hparams.optimizer, self.model.parameters())

    def train_dataloader(self) -> InMemoryLoader:
        return InMemoryLoader(self.x, self.y, self.batch_size, EpochPermutation(len(self.x), True, seed=0), self.device)


def bare_lightning_run(cfg: Any, loss: Loss, x: torch.Tensor, y: torch.Tensor, epochs: int) -> float:
    """Samples/s of a plain `pl.Trainer` (no logger, callbacks or checkpointing) fitting `BareLightning`."""
    timer = EpochTimer()
    trainer = pl.Trainer(accelerator=cfg.trainer.accelerator, devices=1, precision=cfg.trainer.precision,
                         max_epochs=epochs, logger=False, callbacks=[timer], enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(BareLightning(cfg, loss, x, y))
    return timer.samples_per_second()
