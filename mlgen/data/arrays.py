"""ArrayDataModule: the modality-free base of every mlgen datamodule (the contract is in docs/architecture.md).

The datamodule contract, which every model family relies on and nothing else:
- Batches are `(x, y)`: `x` float `[B, *shape]`, `y` long `[B]` with labels in `[0, num_classes)`.
  `shape` is that of one example, any rank: `[D]` for table rows, `[C, H, W]` for images.
- `shape` and `num_classes` are attributes stated in the data config (its single source: models
  read `${data.shape}` and `${data.num_classes}`); `setup` checks the data against them.
- After `setup`, `datasets` maps "train", "val" and "test" to `TensorDataset(x, y)` in model space.
- Splits are fixed by `split_seed`: the source's training split is divided into train and val, and
  `train_fraction` keeps a seeded share of train (low-data runs); the source's test split is kept whole.
  Every run and every DDP rank sees the same split.
- Loaders: a standard DataLoader, or (`in_memory`) whole splits on the training device sliced by
  `mlgen.data.in_memory`, sharded by rank so that a DDP run's batches interleave into exactly the
  batches of one process with `world_size` times the batch size, and resumable mid-epoch.

A modality (images, tables, ...) subclasses this and provides two methods:
- `load_splits()`: the raw `{"train": (x, y), "test": (x, y)}` arrays of its source;
- `prepare_splits(splits)`: its checks and scaling, raw arrays -> model space. It sees the train,
  val and test splits already separated, so a data-dependent transform is fitted on "train" only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from mlgen.compat import processed_training_batches
from mlgen.config.checks import (
    check_fraction,
    check_int,
    check_positive_int,
    is_int,
    require,
)
from mlgen.data.in_memory import EpochPermutation, InMemoryLoader
from mlgen.errors import DataError

Arrays = tuple[Tensor, Tensor]
SPLITS = ("train", "val", "test")


class ArrayDataModule(pl.LightningDataModule):
    """Seeded splits and loaders over `(x, y)` arrays of any example shape.

    Args:
        shape: shape of one example (`[D]`, `[C, H, W]`, ...) in model space; the config is the single
            source of this fact.
        num_classes: number of labels.
        batch_size: training batch size per process.
        eval_batch_size: batch size for val/test (defaults to `batch_size`).
        val_fraction: share of the source's training split held out for validation.
        train_fraction: share of the remaining training split to keep (low-data experiments).
        split_seed: seed of the train/val split and of the `train_fraction` subset.
        num_workers: DataLoader worker processes.
        pin_memory: pin host memory for faster GPU transfer.
        in_memory: keep each split as one tensor on the training device and slice batches from it
            (`mlgen.data.in_memory`); much faster for small data. Off: a standard DataLoader.
        passes_per_epoch: passes over the training split in one Lightning epoch (in-memory path). Lightning
            pays a fixed cost per epoch (epoch-end hooks, metric syncs, checkpoint checks); where a pass is
            a few steps (small tables, low-data runs) that cost rivals the training. `max_epochs` then
            counts `passes_per_epoch` passes each, with the same batches in the same order as that many
            one-pass epochs.
        batches_per_step: batches per Lightning training step (in-memory path): the fast path
            (`mlgen.models.fast_path`), where the model runs one optimizer step per batch inside one
            Lightning step, so Lightning's per-step cost is paid once per group; the same weights as 1. The
            model configs read it (`model.batches_per_step`). Where the Trainer counts training batches
            (`fast_dev_run`, an integer `limit_train_batches` or `val_check_interval`) the loader yields one
            batch per step, so those keep counting batches. Ignored by the DataLoader path.
    """

    def __init__(
        self,
        shape: Sequence[int],
        num_classes: int,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        val_fraction: float = 0.1,
        train_fraction: float = 1.0,
        split_seed: int = 0,
        num_workers: int = 0,
        pin_memory: bool = False,
        in_memory: bool = True,
        passes_per_epoch: int = 1,
        batches_per_step: int = 1,
    ) -> None:
        super().__init__()
        require(len(shape) >= 1 and all(is_int(s) and s >= 1 for s in shape), "data.shape", list(shape),
                "it must list the positive sizes of one example", "e.g. data.shape=[30] for rows of 30 values, [1,28,28] for images")
        check_positive_int("data.num_classes", num_classes)
        check_positive_int("data.batch_size", batch_size)
        if eval_batch_size is not None:
            check_positive_int("data.eval_batch_size", eval_batch_size)
        check_fraction("data.val_fraction", val_fraction, low_open=False, high_closed=False)
        check_fraction("data.train_fraction", train_fraction, low_open=True, high_closed=True)
        check_int("data.split_seed", split_seed, low=0, example=0)
        check_int("data.num_workers", num_workers, low=0, example=0)
        check_positive_int("data.passes_per_epoch", passes_per_epoch)
        check_positive_int("data.batches_per_step", batches_per_step)
        require(in_memory or passes_per_epoch == 1, "data.passes_per_epoch", passes_per_epoch,
                "several passes per epoch need the in-memory path (data.in_memory=false gives a DataLoader, one pass per "
                "epoch)", "set data.in_memory=true, or data.passes_per_epoch=1 and raise trainer.max_epochs instead")
        # collects the arguments of every subclass's __init__ too (Lightning walks the call stack)
        self.save_hyperparameters(logger=False)
        self.shape = tuple(shape)
        self.num_classes = num_classes
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.datasets: dict[str, TensorDataset] = {}

    # --- what subclasses provide -------------------------------------------------------
    def load_splits(self) -> dict[str, Arrays]:
        """The source's raw arrays, `{"train": (x, y), "test": (x, y)}`, `x` of any dtype `[N, ...]`."""
        raise NotImplementedError(f"{type(self).__name__} must implement load_splits()")

    def prepare_splits(self, splits: dict[str, Arrays]) -> dict[str, Arrays]:
        """Modality hook: check and scale the raw train/val/test arrays into model space (float
        `[N, *shape]`). A transform that learns from data must be fitted on `splits["train"]` only.
        The default only converts to float."""
        return {name: (x.float(), y) for name, (x, y) in splits.items()}

    # --- shared logic -------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        source = self.load_splits()
        raw = {name: self._checked_labels(name, *source[name]) for name in ("train", "test")}
        train_idx, val_idx = self.split_indices(len(raw["train"][0]))
        x, y = raw["train"]
        splits = {"train": (x[train_idx], y[train_idx]), "val": (x[val_idx], y[val_idx]), "test": raw["test"]}
        prepared = self.prepare_splits(splits)
        self.datasets = {name: TensorDataset(*self._checked_examples(name, *prepared[name])) for name in SPLITS}

    def split_indices(self, n: int) -> tuple[Tensor, Tensor]:
        """Train and val indices into the source's `n` training examples: one permutation seeded by
        `split_seed`, val first, then the first `train_fraction` of the rest (at least one example)."""
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.hparams.split_seed))
        n_val = int(round(self.hparams.val_fraction * n))
        val_idx, train_idx = order[:n_val], order[n_val:]
        n_train = max(1, int(round(self.hparams.train_fraction * len(train_idx))))
        return train_idx[:n_train], val_idx

    def _checked_labels(self, split: str, x: Tensor, y: Tensor) -> Arrays:
        y = torch.as_tensor(y, dtype=torch.long)
        name = type(self).__name__
        if len(x) != len(y):
            raise DataError(f"The {split} split of {name} has {len(x)} examples but {len(y)} labels. Fix: give every example one label.")
        top = int(y.max()) if len(y) else -1
        require(top < self.num_classes, "data.num_classes", self.num_classes, f"the {split} split of {name} has the label {top}",
                f"set data.num_classes={top + 1}")
        if len(y) and int(y.min()) < 0:
            raise DataError(
                f"The {split} split of {name} has the label {int(y.min())}; labels must be 0..{self.num_classes - 1}. "
                f"Fix: encode the classes as 0, 1, ..., num_classes - 1."
            )
        return x, y

    def _checked_examples(self, split: str, x: Tensor, y: Tensor) -> Arrays:
        """The contract, checked once: float `[N, *shape]` with finite values."""
        found = list(x.shape[1:])
        require(tuple(found) == self.shape, "data.shape", list(self.shape), f"the examples of {type(self).__name__} have shape {found}",
                f"set data.shape={found} (models read it from there)")
        if not x.is_floating_point():
            raise TypeError(f"{type(self).__name__}.prepare_splits returned {x.dtype} examples; the contract is float")
        # one reduction instead of an isfinite mask as large as the data: NaN and inf propagate into the
        # sum (accumulated in float64, so that large finite data can't overflow it)
        if not torch.isfinite(x.sum(dtype=torch.float64)):
            raise DataError(
                f"The {split} split of {type(self).__name__} holds NaN or infinite values. Fix: remove or impute "
                f"them in the source data."
            )
        return x.contiguous(), y

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
        if trainer is None:
            return self.in_memory_loader(split, shuffle, batch_size, seed=torch.initial_seed())
        seed = torch.initial_seed()  # set by seed_everything; rank 0's value wins so shards never overlap
        if trainer.world_size > 1:
            seed = trainer.strategy.broadcast(seed)
        # `processed`, not `completed`: a checkpoint written in on_train_batch_end has trained a batch it
        # has not yet counted as completed
        progress = (lambda: processed_training_batches(trainer)) if split == "train" else None
        return self.in_memory_loader(split, shuffle, batch_size, seed, trainer.global_rank, trainer.world_size,
                                     trainer.strategy.root_device, progress, _batches_per_step(trainer, self.hparams.batches_per_step))

    def in_memory_loader(self, split: str, shuffle: bool, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                         device: torch.device | str = "cpu", completed_batches: Callable[[], int] | None = None,
                         batches_per_step: int = 1) -> InMemoryLoader:
        """Rank `rank`'s shard of `split` as an `InMemoryLoader`; training shards drop the remainder so
        every rank runs the same number of steps, evaluation shards wrap around so no example is lost."""
        x, y = self.datasets[split].tensors
        training = split == "train"
        sampler = EpochPermutation(len(x), shuffle, seed % 2**62, rank, world_size, drop_uneven=training,
                                   passes=self.hparams.passes_per_epoch if training else 1)
        return InMemoryLoader(x, y, batch_size, sampler, device, completed_batches=completed_batches,
                              batches_per_step=batches_per_step if training else 1)

    def train_dataloader(self) -> DataLoader | InMemoryLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | InMemoryLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader | InMemoryLoader:
        return self._loader("test", shuffle=False)


def _batches_per_step(trainer: pl.Trainer, batches_per_step: int) -> int:
    """`data.batches_per_step`, or 1 where the Trainer counts training batches (`fast_dev_run`, an integer
    `limit_train_batches` or `val_check_interval`): the fast path steps aside, so those count batches as asked."""
    counts_batches = trainer.fast_dev_run or isinstance(trainer.limit_train_batches, int) or isinstance(
        trainer.val_check_interval, int)
    return 1 if counts_batches else batches_per_step
