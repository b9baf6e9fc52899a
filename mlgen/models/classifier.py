"""Classifier: cross-entropy, accuracy and macro-F1 per split."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from mlgen.models.base import MLGenModule

SPLITS = ("train", "val", "test")


class Classifier(MLGenModule):
    """Any net from `mlgen.nets` trained with cross-entropy.

    Args:
        net: config of the net (`_target_` plus options); `shape` and `num_classes` are filled in.
        label_smoothing: cross-entropy label smoothing.
        (others: see `MLGenModule`)
    """

    def __init__(
        self,
        shape: Sequence[int],
        num_classes: int,
        net: Mapping[str, Any],
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None = None,
        label_smoothing: float = 0.0,
        monitor: str = "val/acc",
        monitor_mode: str = "max",
        compile: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__(shape, num_classes, optimizer, scheduler, monitor, monitor_mode, compile, channels_last)
        self.save_hyperparameters(logger=False)  # the run logs the whole composed config instead
        self.net: nn.Module = self.build_net(net, shape=self.shape, num_classes=self.num_classes)
        # validate_args=False: the logits and labels come from this module, and the checks cost a
        # sizeable share of a small model's training step
        metrics = MetricCollection(
            {
                "acc": MulticlassAccuracy(num_classes=self.num_classes, average="micro", validate_args=False),
                "f1": MulticlassF1Score(num_classes=self.num_classes, average="macro", validate_args=False),
            }
        )
        # ModuleDict keys can't be "train" (an nn.Module method), hence the suffix.
        self.split_metrics = nn.ModuleDict({f"{split}_metrics": metrics.clone(prefix=f"{split}/") for split in SPLITS})

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate-layer features (used by FID-style metrics)."""
        return self.net.forward_features(x)

    def _step(self, batch: tuple[Tensor, Tensor], split: str) -> Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        metrics = self.split_metrics[f"{split}_metrics"]
        metrics.update(logits.detach(), y)
        if split == "train":  # accuracy and F1 are logged at the epoch's end (on_train_epoch_end)
            self.log_train_values({"train/loss": loss}, len(y))
        else:
            self.log(f"{split}/loss", loss, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
            self.log_dict(metrics, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        self.log_dict(self.split_metrics["train_metrics"], on_epoch=True)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")
