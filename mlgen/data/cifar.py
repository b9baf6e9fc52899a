"""CIFAR-10 through torchvision's loader (32x32 RGB, 10 classes), with optional augmentation."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchvision import datasets

from mlgen.config.checks import check_int
from mlgen.data.arrays import Arrays
from mlgen.data.images import ImageDataModule
from mlgen.data.torchvision_source import open_torchvision_dataset


def random_crop_flip(x: Tensor, padding: int) -> Tensor:
    """Per-sample random crop (zero padding) and horizontal flip of a whole batch at once.

    Written by hand because torchvision's v2 transforms draw one crop per call, i.e. the same
    crop for a whole batch; this keeps augmentation on the batch's device without a per-sample loop.
    """
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    oy = torch.randint(0, 2 * padding + 1, (b, 1), device=x.device)
    ox = torch.randint(0, 2 * padding + 1, (b, 1), device=x.device)
    rows = (oy + torch.arange(h, device=x.device))[:, :, None]
    cols = (ox + torch.arange(w, device=x.device))[:, None, :]
    flip = torch.rand(b, 1, 1, device=x.device) < 0.5
    cols = torch.where(flip, cols.flip(-1), cols)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


class CIFAR10DataModule(ImageDataModule):
    """CIFAR-10; `augment=true` adds random crop + flip to training batches."""

    def __init__(self, augment: bool = False, crop_padding: int = 4, **kwargs: Any) -> None:
        check_int("data.crop_padding", crop_padding, low=0, example=4)
        kwargs.setdefault("shape", (3, 32, 32))
        kwargs.setdefault("num_classes", 10)
        super().__init__(**kwargs)

    def expected_files(self) -> list[str]:
        cls = datasets.CIFAR10
        return [f"{cls.base_folder}/{name}" for name, _ in cls.train_list + cls.test_list]

    def prepare_data(self) -> None:
        if self.hparams.download:
            open_torchvision_dataset(datasets.CIFAR10, self.root, True, True, self.expected_files())

    def load_splits(self) -> dict[str, Arrays]:
        splits = {}
        for split, train in (("train", True), ("test", False)):
            ds = open_torchvision_dataset(datasets.CIFAR10, self.root, train, False, self.expected_files())
            splits[split] = (torch.from_numpy(ds.data).permute(0, 3, 1, 2), torch.as_tensor(ds.targets))
        return splits

    def on_after_batch_transfer(self, batch: tuple[Tensor, Tensor], dataloader_idx: int) -> tuple[Tensor, Tensor]:
        if self.hparams.augment and self.trainer is not None and self.trainer.training:
            x, y = batch
            return random_crop_flip(x, self.hparams.crop_padding), y
        return batch
