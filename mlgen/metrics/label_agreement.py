"""How often a classifier assigns a conditional generator's samples to the class they were drawn for."""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics.functional.classification import multiclass_accuracy


@torch.no_grad()
def label_agreement(generator: Any, classifier: torch.nn.Module, num_classes: int, n_per_class: int) -> float:
    """Share of `sample(n, labels=c)` images classified as `c`, over `n_per_class` samples per class.

    Both modules should be in eval mode and on the same device."""
    device = next(classifier.parameters()).device
    labels = torch.arange(num_classes, device=device).repeat_interleave(n_per_class)
    predictions = classifier(generator.sample(len(labels), labels)).argmax(1)
    return float(multiclass_accuracy(predictions, labels, num_classes=num_classes, average="micro"))
