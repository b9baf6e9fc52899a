"""The per-step fast path: one Lightning training step runs the optimizer steps of several batches.

Why: on a small model Lightning's per-step Python (hooks, progress tracking, logger connector, progress
display) is a sizeable share of a step (issue 17). With `data.batches_per_step=K` the in-memory loader hands
each training step K consecutive batches (`mlgen.data.step_batches.StepBatches`), and the module, under
manual optimisation, runs for each batch what Lightning's automatic optimisation would: the family's loss
(`train_batch`), zero_grad, `manual_backward`, gradient clipping with the Trainer's settings (handed over by
`mlgen.tasks.common.build_trainer`: Lightning refuses them under manual optimisation), the step through
Lightning's optimizer wrapper (so `global_step`, precision plugins and DDP's gradient sync work as usual) and
the EMA update. Families that step their own optimizers (GANs) run their `train_batch` per batch unchanged.
Lightning's per-step work is then paid once per K optimizer steps. Written by hand: Lightning has no API
for several optimizer steps per loop iteration.

Exact: the weights after training equal the normal path's (same operations in the same order, same random
draws; tests/unit/test_fast_path.py). Lightning's count of stepped batches advances once per batch, so
per-step logging, logger steps and `max_steps` fall where they would, and a mid-epoch checkpoint (written
between Lightning steps) resumes after the last group trained.
Differs: Lightning's batch hooks and a callback's `batch_idx` come once per group; an integer
`trainer.limit_train_batches` or `val_check_interval` counts groups; a stop request (SIGTERM, Slurm requeue)
is served at the end of the group; `trainer.accumulate_grad_batches` is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import Tensor

from mlgen.compat import count_stepped_batch
from mlgen.data.step_batches import StepBatches

if TYPE_CHECKING:
    from mlgen.models.base import MLGenModule


def train_on_batches(module: MLGenModule, batch: Any, batch_idx: int) -> None:
    """Under manual optimisation: one optimizer update per batch of `batch` (a `StepBatches`, or one batch)."""
    trainer = module.trainer
    grouped = isinstance(batch, StepBatches)
    module.writes_own_step_logs = grouped  # Lightning writes its loggers once per group (log_train_values)
    try:
        for i, (index, one) in enumerate(batch.batches() if grouped else [(batch_idx, batch)]):
            if i:
                if 0 <= trainer.max_steps <= trainer.global_step:
                    break
                count_stepped_batch(trainer)
            loss = module.train_batch(one, index)
            if loss is not None:  # a family that Lightning would optimise: its update, as Lightning runs it
                optimizer_update(module, loss)
    finally:
        module.writes_own_step_logs = False


def optimizer_update(module: MLGenModule, loss: Tensor) -> None:
    """What Lightning's automatic optimisation does with one batch's loss: zero_grad, backward, clipping
    (`configure_gradient_clipping` with the Trainer's settings), optimizer step, then the module's own
    after-step work (EMA)."""
    optimizer = module.optimizers()
    optimizer.zero_grad()
    module.manual_backward(loss)
    clip_val, clip_algorithm = module.gradient_clipping
    if clip_val:
        module.configure_gradient_clipping(optimizer, clip_val, clip_algorithm)
    optimizer.step()
    module.on_weights_updated()
