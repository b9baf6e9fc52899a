"""Stop a diverging run at once, and never write a checkpoint with non-finite weights.

A NaN or infinite training loss never recovers: every later step and every checkpoint carries it, and
Lightning's ModelCheckpoint still writes `last.ckpt` (and may rank a NaN score) from such weights. So
the training values every family hands to `MLGenModule.log_train_values` are checked, and the weights
are checked again just before any checkpoint is written.

Cost: reading a tensor's finiteness on the host waits for the device. On CPU there is nothing to wait
for, so the values are checked every step; on an accelerator only on the steps the loggers write
(`trainer.log_every_n_steps`, which sync anyway) and at every save (one sync), so a divergence between
logging steps is caught at the next logging step or save, whichever comes first, and no checkpoint is
written from it. Lives in `models/` (not `tracking/`) because `MLGenModule` calls it.
Written by hand: Lightning's `detect_anomaly` costs a full autograd anomaly check per step, and its
`check_finite` of EarlyStopping acts only on monitored validation values at epoch end.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import Tensor

from mlgen.errors import MLGenError


class DivergenceError(MLGenError):
    """Training produced a non-finite loss or non-finite weights."""


def first_non_finite(values: Mapping[str, Tensor | float]) -> str | None:
    """Name of the first value that is NaN or infinite (one host sync for all of them), else None."""
    names = list(values)
    if not names:
        return None
    if all(_host_scalar(values[n]) for n in names):
        # read directly: about 1 us per value, where the tensor ops below cost ~0.1 ms per training step on
        # CPU, where this runs every step (2% of the MLP classifier's step). `.item()`, not `float()`: a loss
        # still in the graph makes `float()` warn ("Converting a tensor with requires_grad=True to a scalar")
        return next((n for n in names if not math.isfinite(_item(values[n]))), None)
    flags = torch.stack([torch.isfinite(torch.as_tensor(values[n], dtype=torch.float32)).all().cpu() for n in names])
    bad = (~flags).nonzero()
    return names[int(bad[0])] if len(bad) else None


def _item(value: Tensor | float) -> float:
    return value.item() if isinstance(value, Tensor) else float(value)


def _host_scalar(value: Tensor | float) -> bool:
    return not isinstance(value, Tensor) or (value.device.type == "cpu" and value.numel() == 1)


def all_finite(tensors: Iterable[Tensor]) -> bool:
    """True when every floating tensor is finite (one host sync).

    Each tensor's float64 sum is finite exactly when all its elements are (a NaN or an infinity carries
    into the sum, and float32/16 values cannot add up to float64's range), and it reads each element once
    without a mask of the tensor's size: 5-10x faster than `isfinite(t).all()` per tensor on CPU, where
    it runs before every checkpoint. (MPS has no float64: there a float32 sum, which only values near
    float32's largest could overflow.)"""
    sums = [t.sum(dtype=torch.float32 if t.device.type == "mps" else torch.float64)
            for t in tensors if t.is_floating_point()]
    return bool(torch.isfinite(torch.stack([s.cpu() for s in sums])).all()) if sums else True


def divergence_message(what: str, value: Tensor | float | None, step: int, epoch: int, lr: object,
                       clip_gradients: bool) -> str:
    shown = f" is {float(value)}" if value is not None else " is not finite"
    clip = ("clip gradients with trainer.gradient_clip_val=1.0" if clip_gradients else
            "lower the discriminator's model.d_optimizer.lr too (gradient clipping is not available for "
            "manually optimised families)")
    return (f"training diverged: {what}{shown} at global step {step} (epoch {epoch}); the run stopped there "
            f"and no checkpoint was written from non-finite weights (checkpoints written before stay as they "
            f"were). Fix: lower the learning rate (model.optimizer.lr={lr}, try 10x smaller), {clip}, or use "
            f"trainer.precision=32-true if it ran in 16-bit precision.")
