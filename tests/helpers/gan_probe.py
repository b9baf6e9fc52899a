"""Test-only callback that records a GAN's weights after every optimizer step, per rank, to a JSON file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch


def digest(module: torch.nn.Module) -> str:
    """Exact fingerprint of a module's parameters (any difference in any bit changes it)."""
    h = hashlib.sha1()
    for p in module.parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class GANProbe(pl.Callback):
    """Before each optimizer step it records the weights the previous step left, and at the end of each
    batch those the last step left: together, G and D after every step. Writes
    `<default_root_dir>/probe_rank<R>.json` at the end of training."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def _record(self, trainer: pl.Trainer, gan: Any, event: str) -> None:
        record = {"event": event, "step": trainer.global_step, "g": digest(gan.generator), "d": digest(gan.discriminator)}
        if gan.generator_ema is not None:
            record.update(ema=digest(gan.generator_ema), ema_updates=int(gan.generator_ema.n_averaged))
        loss = trainer.callback_metrics.get("train/d_loss_step")
        record["d_loss"] = None if loss is None else float(loss)  # this rank's own batch
        self.records.append(record)

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        self._record(trainer, pl_module, "before_step")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self._record(trainer, pl_module, "batch_end")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        path = Path(trainer.default_root_dir) / f"probe_rank{trainer.global_rank}.json"
        path.write_text(json.dumps({"world_size": trainer.world_size, "records": self.records}))
