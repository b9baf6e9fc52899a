"""MNIST, Fashion-MNIST and KMNIST through torchvision's loaders (28x28 grey, 10 classes)."""

from __future__ import annotations

from typing import Any

from torchvision import datasets

from mlgen.config.checks import check_choice
from mlgen.data.arrays import Arrays
from mlgen.data.images import ImageDataModule
from mlgen.data.torchvision_source import open_torchvision_dataset

VARIANTS: dict[str, type[datasets.MNIST]] = {
    "mnist": datasets.MNIST,
    "fashion_mnist": datasets.FashionMNIST,
    "kmnist": datasets.KMNIST,
}


class MNISTDataModule(ImageDataModule):
    """One datamodule for the MNIST family; `variant` picks the torchvision dataset."""

    def __init__(self, variant: str = "mnist", **kwargs: Any) -> None:
        check_choice("data.variant", variant, sorted(VARIANTS))
        kwargs.setdefault("shape", (1, 28, 28))
        kwargs.setdefault("num_classes", 10)
        super().__init__(**kwargs)
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
