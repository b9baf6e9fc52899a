"""Checkpoint-and-requeue on Slurm's warning signal, safe under DDP.

Lightning's own auto-requeue (SLURMEnvironment(auto_requeue=True)) saves the checkpoint inside
the signal handler. Under DDP that deadlocks: the handler's barrier on one rank meets another
rank blocked in a gradient all-reduce or in Lightning's per-step SIGTERM broadcast, and the job
hangs until it is killed (seen here with 2 ranks on CPU; Lightning issue #21406, fix not
released). So the handler here only sets a flag. Before each training step every rank asks
whether any rank got the signal (one all-reduce); then all save the hpc checkpoint together and
exit, and rank 0 runs `scontrol requeue` as the last thing before its interpreter ends, because
the requeue kills the job at once and the loggers (W&B, CSV) must have flushed by then.

Saving between steps, not in `on_train_batch_end` (where Lightning counts the step as processed
but not completed), makes the resumed run continue with exactly the next batch, so it ends with
the weights of an uninterrupted run. Lightning's restore then adds one to the step its loggers see
(it assumes the checkpoint came from the end of a batch), so the checkpoint stores one less and the
resumed run logs every row at the step an uninterrupted run logs it. The requeued job starts in the
same run dir (mlgen/distributed/run_dir.py), and Lightning resumes from the newest
`hpc_ckpt_*.ckpt` in `trainer.default_root_dir` on its own.

A signal that came before fit started (e.g. `--time` shorter than the `@seconds` of `--signal`)
is reported and the job runs on: there is nothing to save yet, and requeueing would repeat the
same early signal forever. Written by hand because no library does this correctly today.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import subprocess
from types import FrameType
from typing import Any

import pytorch_lightning as pl

from mlgen.compat import hpc_checkpoint_path
from mlgen.distributed.preemption import preemption_signal, take_early_signal

log = logging.getLogger(__name__)


class StopAtStepBoundary(pl.Callback):
    """On any of `signums`: every rank saves a checkpoint at the next step boundary, then `after_save`
    ends the process (the flag-then-agree scheme of this module's docstring). Subclasses say where the
    checkpoint goes and how the process ends."""

    def __init__(self, signums: tuple[int, ...]) -> None:
        self.signums = tuple(signal.Signals(s) for s in signums)
        self._received: signal.Signals | None = None
        self._saving = False
        self._previous: dict[signal.Signals, Any] = {}

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._received = signal.Signals(signum)  # nothing else: the handler may interrupt any bytecode, even a collective

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._previous = {s: signal.signal(s, self._on_signal) for s in self.signums}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning installs its own SIGTERM handler after on_fit_start (it stops the run as if finished,
        # exit 0); ours replaces it for the fit. Lightning's teardown then puts ours back, ours the original.
        for signum in self.signums:
            signal.signal(signum, self._on_signal)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if not trainer.strategy.reduce_boolean_decision(self._received is not None, all=False):
            return
        path = self.checkpoint_path(trainer)
        self._saving = True
        trainer.save_checkpoint(path)  # every rank: it is a collective
        self._saving = False
        self.after_save(trainer, path, self._received or self.signums[0])

    def checkpoint_path(self, trainer: pl.Trainer) -> str:
        raise NotImplementedError

    def after_save(self, trainer: pl.Trainer, path: str, signum: signal.Signals) -> None:
        """End the process (raise SystemExit) once `path` is saved on every rank."""
        raise NotImplementedError

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        """Store the logging step one lower: Lightning's restore adds one for a checkpoint taken before
        a batch as if it came from the end of one (fit_loop's epoch loop `reset`)."""
        if self._saving:
            checkpoint["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"] -= 1


class SlurmRequeue(StopAtStepBoundary):
    """On `signum` (SIGUSR1, as `#SBATCH --signal=USR1@120` sends; submitit's signal in its jobs):
    save, exit, requeue.

    Exits with status 0 before testing, so a preempted attempt neither writes a final checkpoint nor
    reports test metrics; the requeued attempt does. If the requeue fails the job ends there, and
    the log says which checkpoint to resume from by hand.
    """

    def __init__(self, signum: int | None = None) -> None:
        super().__init__((signum if signum is not None else preemption_signal(),))
        self.signum = self.signums[0]

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_fit_start(trainer, pl_module)
        if take_early_signal() and trainer.is_global_zero:
            log.warning("%s arrived before training started, so there was nothing to save: the job runs on "
                        "and ends at its time limit unless it finishes first. If this was the time-limit "
                        "warning, --time is shorter than the seconds of --signal=%s@<seconds>: submit with a "
                        "--time well above them.", self.signum.name, self.signum.name.removeprefix("SIG"))

    def checkpoint_path(self, trainer: pl.Trainer) -> str:
        return hpc_checkpoint_path(trainer, trainer.default_root_dir)  # Lightning's naming

    def after_save(self, trainer: pl.Trainer, path: str, signum: signal.Signals) -> None:
        if trainer.is_global_zero:
            log.info("%s received: saved %s at global step %d", signum.name, path, trainer.global_step)
            atexit.register(_requeue, path)  # after Lightning's teardown and mlgen's finish()
        raise SystemExit(0)


def _requeue(checkpoint: str) -> None:
    """`scontrol requeue` this job (or this array task)."""
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{array_job}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array_job else os.environ["SLURM_JOB_ID"]
    proc = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
    if proc.returncode != 0:
        log.error("scontrol requeue %s failed (%d): %s. Resume with ckpt_path=%s", job, proc.returncode,
                  proc.stderr.strip(), checkpoint)
    else:
        log.info("requeued Slurm job %s", job)
