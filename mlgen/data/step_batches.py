"""Several consecutive training batches handed to one Lightning training step (the per-step fast path).

`data.batches_per_step=K` makes the in-memory loader yield, instead of one batch `(x, y)`, the rows of K
consecutive batches of the epoch's permutation at once (the last group of an epoch may hold fewer); the
module then runs one optimizer step per batch (`mlgen.models.fast_path`). Lightning's per-step work (hooks,
progress tracking, logger connector, progress display) is then paid once per K optimizer steps.

A `StepBatches` is a named tuple whose first two fields are the rows of all its batches, so code that reads
a batch as `(x, y)` (callbacks counting samples with `len(batch[1])`, Lightning's batch-size inference,
device transfer) sees it as one larger batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from torch import Tensor


class StepBatches(NamedTuple):
    """Rows `x`, `y` of consecutive batches of `batch_size` (the last may be shorter); `first` is the index in
    the epoch of the first of them, as Lightning's `batch_idx` would count it on the normal path."""

    x: Tensor
    y: Tensor
    batch_size: int
    first: int

    def batches(self) -> Iterator[tuple[int, tuple[Tensor, Tensor]]]:
        """`(batch_idx, (x, y))` of each batch, in order; views, no copies."""
        for i, (x, y) in enumerate(zip(self.x.split(self.batch_size), self.y.split(self.batch_size))):
            yield self.first + i, (x, y)
