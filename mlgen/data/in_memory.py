"""Batches sliced from tensors that already sit on the training device.

Written by hand because no library offers it: a DataLoader over a TensorDataset calls
`__getitem__` per sample and collates, which dominates the step time of small models.
Here a whole split is one tensor on the device and a batch is one index-select.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Sampler

from mlgen.config.checks import require
from mlgen.data.step_batches import StepBatches


class EpochPermutation(Sampler[int]):
    """This rank's indices for one epoch: a permutation seeded by `seed + epoch`, the same on every
    rank, of which rank `r` takes every `world_size`-th element starting at `r`.

    With interleaved shards, batch `b` of all ranks together is exactly batch `b` of one process
    whose batch is `world_size` times larger, so a DDP run matches a single-process run.
    Lightning calls `set_epoch` at each epoch start, as it does for DistributedSampler.

    With `passes` > 1, one epoch is that many passes over the data, pass `p` of epoch `e` being the
    permutation of epoch `e * passes + p` with `passes=1`: the same batches in the same order as
    `passes` times as many one-pass epochs, with Lightning's fixed per-epoch cost paid once.
    """

    def __init__(self, n: int, shuffle: bool, seed: int, rank: int = 0, world_size: int = 1, drop_uneven: bool = True,
                 passes: int = 1) -> None:
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.rank, self.world_size, self.drop_uneven = rank, world_size, drop_uneven
        self.passes = passes
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def pass_indices(self) -> list[Tensor]:
        """This rank's indices of each pass of the epoch (batches never span two passes)."""
        return [self._one_pass(self.epoch * self.passes + p) for p in range(self.passes)]

    def indices(self) -> Tensor:
        return torch.cat(self.pass_indices())

    def _one_pass(self, position: int) -> Tensor:
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + position))
        else:
            order = torch.arange(self.n)
        if self.world_size > 1:
            if self.drop_uneven:  # every rank must run the same number of steps
                order = order[: self.n - self.n % self.world_size]
            else:  # evaluation: wrap around like DistributedSampler, so no sample is lost
                order = torch.cat([order, order[: -self.n % self.world_size]])
            order = order[self.rank :: self.world_size]
        return order

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def pass_length(self) -> int:
        if self.world_size == 1:
            return self.n
        return (self.n if self.drop_uneven else self.n + -self.n % self.world_size) // self.world_size

    def __len__(self) -> int:
        return self.pass_length() * self.passes


class InMemoryLoader:
    """Iterable of `(x, y)` batches, or with `batches_per_step` > 1 of `StepBatches` holding that many
    consecutive batches of a pass (the last group of a pass may hold fewer): the fast path
    (`mlgen.data.step_batches`), where one Lightning step trains each of them.

    Stateful for Lightning: a checkpoint stores the epoch, and a run resumed from a mid-epoch
    checkpoint (e.g. Slurm preemption) continues at the first batch not yet trained, so it
    ends with the same number of optimizer steps as an uninterrupted run. That count comes from
    `completed_batches` (Lightning's own progress tracker), not from what this loader yielded,
    because Lightning prefetches a batch ahead and a signal can save a checkpoint mid-step.
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        batch_size: int,
        sampler: EpochPermutation,
        device: torch.device | str = "cpu",
        completed_batches: Callable[[], int] | None = None,
        batches_per_step: int = 1,
    ) -> None:
        self.x, self.y = x.to(device), y.to(device)
        self.batch_size = batch_size
        self.batches_per_step = batches_per_step
        self.sampler = sampler  # Lightning calls `sampler.set_epoch` on this attribute each epoch
        self.batch_sampler = None  # Lightning inspects it next to `sampler`; batches are sliced here
        self.completed_batches = completed_batches
        self._skip = 0

    def _batches_per_pass(self) -> int:
        return -(-self.sampler.pass_length() // self.batch_size)

    def __len__(self) -> int:
        return -(-self._batches_per_pass() // self.batches_per_step) * self.sampler.passes

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor] | StepBatches]:
        skip, self._skip = self._skip, 0  # Lightning steps (groups of batches) already trained
        rows = self.batch_size * self.batches_per_step
        for p, order in enumerate(self.sampler.pass_indices()):
            order = order.to(self.x.device)
            for offset in range(0, len(order), rows):
                if skip:
                    skip -= 1
                    continue
                index = order[offset : offset + rows]
                x, y = self.x.index_select(0, index), self.y.index_select(0, index)
                if self.batches_per_step == 1:
                    yield x, y
                else:  # the epoch's index of its first batch, as Lightning counts batches with one per step
                    yield StepBatches(x, y, self.batch_size, p * self._batches_per_pass() + offset // self.batch_size)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.sampler.epoch, "batches_per_step": self.batches_per_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.set_epoch(state["epoch"])
        done = self.completed_batches() if self.completed_batches else 0
        saved = state.get("batches_per_step", 1)
        # Lightning counts the epoch's steps done in groups of the saved size: another size would skip other batches
        require(not done or saved == self.batches_per_step, "data.batches_per_step", self.batches_per_step,
                f"this checkpoint was written inside an epoch trained with {saved} batch(es) per step (its count of "
                "steps done means that many batches each)", f"resume with data.batches_per_step={saved} (and the same "
                "trainer.fast_dev_run and integer batch limits), or from a checkpoint written at an epoch's end")
        self._skip = done if done < len(self) else 0
