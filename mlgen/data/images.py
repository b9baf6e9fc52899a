"""ImageDataModule: what is about images on top of `ArrayDataModule` ([C, H, W] shape, [-1, 1] scaling).

Subclasses say how to read their raw images (`load_splits`, uint8 or float in [0, 1]); splits,
loaders and the batch contract come from `mlgen.data.arrays` (see docs/architecture.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mlgen.config.checks import require
from mlgen.data.arrays import ArrayDataModule, Arrays


def to_unit_range(x: Tensor) -> Tensor:
    """uint8 images -> float in [0, 1]; float input is assumed to be in [0, 1] already."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


class ImageDataModule(ArrayDataModule):
    """Batches `(x, y)`: `x` float `[B, C, H, W]` in [-1, 1], `y` long `[B]`.

    Args:
        root: folder holding the dataset files (torchvision layout).
        download: fetch the dataset if it is missing (needs internet).
        binarize: threshold pixels at 0.5 (for Bernoulli likelihoods); values become -1 or 1.
        **kwargs: the arguments of `ArrayDataModule` (`shape` must be `[C, H, W]`).
    """

    def __init__(self, root: str = "data", download: bool = False, binarize: bool = False, **kwargs: Any) -> None:
        shape = kwargs.get("shape", ())
        require(len(shape) == 3, "data.shape", list(shape), "images need [channels, height, width]", "e.g. data.shape=[1,28,28]")
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()

    def prepare_splits(self, splits: dict[str, Arrays]) -> dict[str, Arrays]:
        """Pixels to [-1, 1] (after thresholding at 0.5 with `binarize`)."""
        return {name: (self.scale(x), y) for name, (x, y) in splits.items()}

    def scale(self, x: Tensor) -> Tensor:
        """Raw pixels -> [-1, 1], into a new tensor (a source may hand out arrays it keeps)."""
        x = to_unit_range(x)
        if self.hparams.binarize:
            x = (x > 0.5).float()
        return x.mul(2.0).sub_(1.0)
