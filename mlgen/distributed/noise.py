"""Random noise that does not depend on how a global batch is split between DDP ranks.

With `torch.randn_like(x)` each rank draws noise for its own rows from its own generator, so a
2-rank run never sees the noise a 1-process run with the same global batch sees, and the two cannot
be compared weight for weight. Every rank here draws the noise of the whole global batch from the
generator that `seed_everything` seeded identically on all ranks, and keeps its own rows; rows are
interleaved (rank r holds global rows r, r + world, ...) like mlgen's in-memory DDP shards. The
extra draws cost little next to a forward pass. Written by hand: torch and Lightning offer none.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def global_batch_randn(like: Tensor) -> Tensor:
    """Standard normal noise shaped like `like` (this rank's batch first): this rank's rows of the
    noise of the global batch. All ranks must call it with the same shape, as DDP steps do."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return torch.randn_like(like)
    world, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
    if world == 1:
        return torch.randn_like(like)
    noise = torch.randn(like.shape[0] * world, *like.shape[1:], dtype=like.dtype, device=like.device)
    return noise[rank::world]


def global_batch_rows(draw: Callable[[int], Tensor], n: int) -> Tensor:
    """This rank's `n` rows of `draw(n * world)`, any random draw (timesteps, masks) by the same
    convention as `global_batch_randn`; one process gets `draw(n)` itself."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return draw(n)
    world, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
    return draw(n) if world == 1 else draw(n * world)[rank::world]
