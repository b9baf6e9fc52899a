"""SIGTERM and Ctrl-C (SIGINT): save where training stopped, say how to resume, exit 143 / 130.

Without this, Lightning turns SIGTERM into one INFO line and a clean exit 0 (W&B records the run as
finished) and Ctrl-C loses the work since the last epoch end. Here the signal takes the same path as
Slurm's preemption warning (`StopAtStepBoundary` in mlgen/distributed/requeue.py): every rank agrees at
the next step boundary, all save `checkpoints/last.ckpt` together, and the process exits with the
shell's code for the signal (128 + signal number), which mlgen's `finish` hands to W&B so the run is
recorded as failed, not finished. A second Ctrl-C while waiting for the step boundary stops at once.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

import pytorch_lightning as pl

from mlgen.checkpoints.latest import LatestCheckpoint
from mlgen.distributed.requeue import StopAtStepBoundary


class SaveOnTermination(StopAtStepBoundary):
    """SIGTERM / SIGINT during fit: save `last.ckpt` at the next step boundary, print the resume command."""

    def __init__(self) -> None:
        super().__init__((signal.SIGTERM, signal.SIGINT))

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and self._received == signal.SIGINT:
            raise KeyboardInterrupt  # Ctrl-C twice: the user does not want to wait for the save
        super()._on_signal(signum, frame)

    def checkpoint_path(self, trainer: pl.Trainer) -> str:
        latest = next((c for c in trainer.callbacks if isinstance(c, LatestCheckpoint)), None)
        folder = latest.dirpath if latest is not None and latest.dirpath else os.path.join(trainer.default_root_dir, "checkpoints")
        return os.path.join(folder, "last.ckpt")

    def after_save(self, trainer: pl.Trainer, path: str, signum: signal.Signals) -> None:
        if trainer.is_global_zero:
            print(f"mlgen: {signum.name} received: saved {os.path.abspath(path)} at global step "
                  f"{trainer.global_step} (epoch {trainer.current_epoch}). Resume with:\n"
                  f"  mlgen-train ckpt_path={os.path.abspath(path)}", file=sys.stderr, flush=True)
        raise SystemExit(128 + int(signum))
