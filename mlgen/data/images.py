"""One base for every datamodule: splits with a fixed seed, scaling to [-1, 1], loaders.

Subclasses only say how to read their raw arrays (`load_splits`); everything a model sees
(`shape`, `num_classes`, batch format `(x, y)`) is decided here, once for all families.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from mlgen.compat import processed_training_batches
from mlgen.config.checks import check_fraction, check_positive_int
from mlgen.data.in_memory import EpochPermutation, InMemoryLoader
from mlgen.errors import ConfigError

Arrays = tuple[Tensor, Tensor]


def to_unit_range(x: Tensor) -> Tensor:
    """uint8 images -> float in [0, 1]; float input is assumed to be in [0, 1] already."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


class ImageDataModule(pl.LightningDataModule):
    """Batches `(x, y)`: `x` float `[B, C, H, W]` in [-1, 1], `y` long `[B]`.

    Args:
        root: folder holding the dataset files (torchvision layout).
        shape: `[C, H, W]` the data must have; the config is the single source of this fact.
        num_classes: number of labels the data must have.
        batch_size: training batch size per process.
        eval_batch_size: batch size for val/test (defaults to `batch_size`).
        val_fraction: share of the official training split held out for validation.
        train_fraction: share of the remaining training split to keep (low-data experiments).
        split_seed: seed of the train/val split and the `train_fraction` subset (fixed, so
            every run and every DDP rank sees the same split).
        binarize: threshold pixels at 0.5 (for Bernoulli likelihoods); values become -1 or 1.
        download: fetch the dataset if it is missing (needs internet).
        num_workers: DataLoader worker processes.
        pin_memory: pin host memory for faster GPU transfer.
        in_memory: keep each split as one tensor on the training device and slice batches from it
            (`mlgen.data.in_memory`); much faster for small data. Off: a standard DataLoader.
    """

    def __init__(
        self,
        root: str = "data",
        shape: Sequence[int] = (1, 28, 28),
        num_classes: int = 10,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        val_fraction: float = 0.1,
        train_fraction: float = 1.0,
        split_seed: int = 0,
        binarize: bool = False,
        download: bool = False,
        num_workers: int = 0,
        pin_memory: bool = False,
        in_memory: bool = True,
    ) -> None:
        super().__init__()
        check_positive_int("data.batch_size", batch_size)
        if eval_batch_size is not None:
            check_positive_int("data.eval_batch_size", eval_batch_size)
        check_positive_int("data.num_classes", num_classes)
        check_fraction("data.val_fraction", val_fraction, low_open=False, high_closed=False)
        check_fraction("data.train_fraction", train_fraction, low_open=True, high_closed=True)
        if num_workers < 0:
            raise ConfigError(f"data.num_workers={num_workers!r} is invalid: it must be >= 0. Fix: set data.num_workers=0.")
        if len(shape) not in (3,) or any(int(s) <= 0 for s in shape):
            raise ConfigError(f"data.shape={list(shape)!r} is invalid: images need [channels, height, width]. Fix: e.g. data.shape=[1,28,28].")
        self.save_hyperparameters(logger=False)
        self.root = Path(root).expanduser()
        self.shape = tuple(int(s) for s in shape)
        self.num_classes = int(num_classes)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.datasets: dict[str, TensorDataset] = {}

    # --- what subclasses provide -------------------------------------------------------
    def load_splits(self) -> dict[str, Arrays]:
        """Return `{"train": (x, y), "test": (x, y)}`; `x` uint8 `[N, C, H, W]` or float in [0, 1]."""
        raise NotImplementedError

    # --- shared logic -------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        splits = self.load_splits()
        x_train, y_train = self._prepare(*splits["train"])
        x_test, y_test = self._prepare(*splits["test"])
        generator = torch.Generator().manual_seed(self.hparams.split_seed)
        order = torch.randperm(len(x_train), generator=generator)
        n_val = int(round(self.hparams.val_fraction * len(x_train)))
        val_idx, train_idx = order[:n_val], order[n_val:]
        n_train = max(1, int(round(self.hparams.train_fraction * len(train_idx))))
        train_idx = train_idx[:n_train]
        self.datasets = {
            "train": TensorDataset(x_train[train_idx], y_train[train_idx]),
            "val": TensorDataset(x_train[val_idx], y_train[val_idx]),
            "test": TensorDataset(x_test, y_test),
        }

    def _prepare(self, x: Tensor, y: Tensor) -> Arrays:
        """Check the arrays against the configured shape and classes, scale to [-1, 1]."""
        if tuple(x.shape[1:]) != self.shape:
            raise ConfigError(
                f"data.shape={list(self.shape)} does not match the data in {self.root}, whose images are "
                f"{list(x.shape[1:])}. Fix: set data.shape={list(x.shape[1:])} (models read it from there)."
            )
        y = torch.as_tensor(y, dtype=torch.long)
        if len(y) and int(y.max()) >= self.num_classes:
            raise ConfigError(
                f"data.num_classes={self.num_classes} is too small: the data has label {int(y.max())}. "
                f"Fix: set data.num_classes={int(y.max()) + 1}."
            )
        x = to_unit_range(x)
        if self.hparams.binarize:
            x = (x > 0.5).float()
        return x.mul_(2.0).sub_(1.0).contiguous(), y

    def _loader(self, split: str, shuffle: bool) -> DataLoader | InMemoryLoader:
        batch_size = self.batch_size if split == "train" else self.eval_batch_size
        if self.hparams.in_memory:
            return self._in_memory_loader(split, shuffle, batch_size)
        workers = self.hparams.num_workers
        return DataLoader(
            self.datasets[split],
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=self.hparams.pin_memory,
        )

    def _in_memory_loader(self, split: str, shuffle: bool, batch_size: int) -> InMemoryLoader:
        """Shards by rank itself (Lightning only injects DistributedSampler into DataLoaders)."""
        trainer = self.trainer
        rank, world, device = (trainer.global_rank, trainer.world_size, trainer.strategy.root_device) if trainer else (0, 1, "cpu")
        seed = torch.initial_seed()  # set by seed_everything; rank 0's value wins so shards never overlap
        if trainer is not None and world > 1:
            seed = trainer.strategy.broadcast(seed)
        x, y = self.datasets[split].tensors
        sampler = EpochPermutation(len(x), shuffle, seed % 2**62, rank, world, drop_uneven=split == "train")
        # `processed`, not `completed`: a checkpoint written in on_train_batch_end has trained a batch it
        # has not yet counted as completed
        progress = (lambda: processed_training_batches(trainer)) if trainer and split == "train" else None
        return InMemoryLoader(x, y, batch_size, sampler, device, completed_batches=progress)

    def train_dataloader(self) -> DataLoader | InMemoryLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | InMemoryLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader | InMemoryLoader:
        return self._loader("test", shuffle=False)
