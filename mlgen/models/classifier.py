"""Classifier: cross-entropy; accuracy on every split, macro-F1 on validation and test."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from mlgen.models.base import MLGenModule

EVAL_SPLITS = ("val", "test")


class Classifier(MLGenModule):
    """Any net from `mlgen.nets` trained with cross-entropy.

    Args:
        net: config of the net (`_target_` plus options); `shape` and `num_classes` are filled in.
        label_smoothing: cross-entropy label smoothing.
        **kwargs: `MLGenModule`'s arguments (conf/model/classifier.yaml monitors val/acc, max).
    """

    def __init__(self, net: Mapping[str, Any], label_smoothing: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.net: nn.Module = self.build_net(net, shape=self.shape, num_classes=self.num_classes)
        # Validation and test metrics; training accuracy is a running count instead (see `train_batch`).
        # validate_args=False: the logits and labels come from this module, so the checks only cost time.
        metrics = MetricCollection(
            {
                "acc": MulticlassAccuracy(num_classes=self.num_classes, average="micro", validate_args=False),
                "f1": MulticlassF1Score(num_classes=self.num_classes, average="macro", validate_args=False),
            }
        )
        # ModuleDict keys can't be "train" (an nn.Module method), hence the suffix.
        self.split_metrics = nn.ModuleDict({f"{split}_metrics": metrics.clone(prefix=f"{split}/") for split in EVAL_SPLITS})

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate-layer features (used by FID-style metrics)."""
        return self.net.forward_features(x)

    def _logits_and_loss(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        x, y = batch
        logits = self(x)
        return logits, F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)

    def train_batch(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        logits, loss = self._logits_and_loss(batch)
        # Accuracy by hand, not torchmetrics: its update costs ~0.3 ms per step on CPU (7% of an MLP
        # step, issue #8); this running count gives the same epoch value (`train/acc_epoch`).
        accuracy = (logits.detach().argmax(dim=1) == batch[1]).float().mean()
        self.log_train_values({"train/loss": loss, "train/acc": accuracy}, len(batch[1]))
        return loss

    def _eval_step(self, batch: tuple[Tensor, Tensor], split: str) -> None:
        logits, loss = self._logits_and_loss(batch)
        self.split_metrics[f"{split}_metrics"].update(logits, batch[1])
        self.log_eval_values({f"{split}/loss": loss}, len(logits))

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def eval_epoch_start(self, split: str) -> None:
        super().eval_epoch_start(split)
        self.split_metrics[f"{split}_metrics"].reset()  # what a validation interrupted by a signal may have left

    def eval_epoch_end(self, split: str) -> None:
        """Accuracy and F1 once per epoch: computed (and synced over DDP ranks) by torchmetrics, then reset.
        Handing the MetricCollection to `self.log` every batch, as Lightning allows, costs a `self.log` call
        per metric and batch (see `log_eval_values`)."""
        super().eval_epoch_end(split)
        metrics = self.split_metrics[f"{split}_metrics"]
        self.log_dict(metrics.compute(), prog_bar=True)
        metrics.reset()
