"""Store the composed run config inside every checkpoint.

Lightning saves the model's hyper-parameters but not which class or datamodule to rebuild;
with the config inside, `mlgen-eval ckpt_path=...` needs nothing else.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

CONFIG_KEY = "mlgen_config"


class ConfigInCheckpoint(pl.Callback):
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[CONFIG_KEY] = self.config
