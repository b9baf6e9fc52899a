"""What tools that work with any generative module (image grids, `mlgen-sample`) may ask of it.

DESIGN.md's contract: `sample(n, labels=None)` in data space and scale; optionally
`reconstruct(x, labels)`. Conditional modules store `conditional: true` and `num_classes`
in their hyperparameters (`model.hparams`), which is how these tools know labels are accepted.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def is_conditional(module: Any) -> bool:
    """Whether `module.sample` takes class labels (hyperparameter `conditional`)."""
    hparams = getattr(module, "hparams", None) or {}
    return bool(hparams.get("conditional", False))


def cycle_labels(n: int, num_classes: int) -> Tensor:
    """0, 1, ..., num_classes - 1, 0, 1, ...: with `nrow = num_classes` each grid column is one class."""
    return torch.arange(n) % num_classes
