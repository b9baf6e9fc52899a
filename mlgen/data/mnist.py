"""MNIST, Fashion-MNIST and KMNIST through torchvision's loaders (28x28 grey, 10 classes)."""

from __future__ import annotations

from typing import Any

from torchvision import datasets

from mlgen.data.images import Arrays, ImageDataModule
from mlgen.data.torchvision_source import open_torchvision_dataset
from mlgen.errors import ConfigError

VARIANTS: dict[str, type[datasets.MNIST]] = {
    "mnist": datasets.MNIST,
    "fashion_mnist": datasets.FashionMNIST,
    "kmnist": datasets.KMNIST,
}


class MNISTDataModule(ImageDataModule):
    """One datamodule for the MNIST family; `variant` picks the torchvision dataset."""

    def __init__(self, variant: str = "mnist", **kwargs: Any) -> None:
        if variant not in VARIANTS:
            raise ConfigError(f"data.variant={variant!r} is unknown. Fix: use one of {sorted(VARIANTS)}.")
        kwargs.setdefault("shape", (1, 28, 28))
        super().__init__(**kwargs)
        self.save_hyperparameters(logger=False)
        self.dataset_cls = VARIANTS[variant]

    def expected_files(self) -> list[str]:
        raw = f"{self.dataset_cls.__name__}/raw"
        return [f"{raw}/{url.rsplit('/', 1)[-1].removesuffix('.gz')}" for url, _ in self.dataset_cls.resources]

    def prepare_data(self) -> None:
        if self.hparams.download:
            for train in (True, False):
                open_torchvision_dataset(self.dataset_cls, self.root, train, True, self.expected_files())

    def load_splits(self) -> dict[str, Arrays]:
        splits = {}
        for split, train in (("train", True), ("test", False)):
            ds = open_torchvision_dataset(self.dataset_cls, self.root, train, False, self.expected_files())
            splits[split] = (ds.data.unsqueeze(1), ds.targets)
        return splits
