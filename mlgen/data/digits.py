"""scikit-learn's 8x8 digits: ships with scikit-learn, so it is the offline default."""

from __future__ import annotations

from typing import Any

import torch

from mlgen.config.checks import check_fraction
from mlgen.data.arrays import Arrays
from mlgen.data.images import ImageDataModule


class DigitsDataModule(ImageDataModule):
    """1,797 grey 8x8 digits (values 0-16); a fixed `test_fraction` is held out as the test split."""

    def __init__(self, test_fraction: float = 0.2, **kwargs: Any) -> None:
        check_fraction("data.test_fraction", test_fraction, low_open=True, high_closed=False)
        kwargs.setdefault("shape", (1, 8, 8))
        kwargs.setdefault("num_classes", 10)
        super().__init__(**kwargs)

    def load_splits(self) -> dict[str, Arrays]:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = torch.as_tensor(digits.images, dtype=torch.float32).div_(16.0).unsqueeze(1)
        y = torch.as_tensor(digits.target, dtype=torch.long)
        # The test split is drawn with its own fixed generator so it never depends on split_seed.
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(12345))
        n_test = int(round(self.hparams.test_fraction * len(x)))
        test, train = order[:n_test], order[n_test:]
        return {"train": (x[train], y[train]), "test": (x[test], y[test])}
