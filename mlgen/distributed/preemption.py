"""Remember Slurm's warning signal from the first moment of a job, before training can act on it.

Slurm sends the signal of `--signal=USR1@<seconds>` that many seconds before the time limit, and a
`--time` shorter than that sends it at once. Without a handler the default action of SIGUSR1 ends
the process, so a signal before mlgen's requeue callback is set up (imports, data loading) killed
the job with nothing saved. Catching it from the start only records when it came; the requeue
callback then decides (see mlgen/distributed/requeue.py). Kept free of heavy imports: the CLI calls
it before anything else.
"""

from __future__ import annotations

import os
import signal
import time
from types import FrameType

_received_at: float | None = None


def preemption_signal() -> signal.Signals:
    """The job's warning signal: submitit's (SUBMITIT_PREEMPT_SIGNAL, default USR2) in a submitit
    job, so its preemption and timeout take mlgen's checkpoint-and-requeue path too; else SIGUSR1."""
    if os.environ.get("SUBMITIT_EXECUTOR") == "slurm":
        return signal.Signals[f"SIG{os.environ.get('SUBMITIT_PREEMPT_SIGNAL', 'USR2')}"]
    return signal.SIGUSR1


def _remember(signum: int, frame: FrameType | None) -> None:
    global _received_at
    _received_at = time.monotonic()


def catch_preemption_signal_early() -> None:
    """In a Slurm job, record the warning signal instead of dying from it (no-op elsewhere)."""
    if "SLURM_JOB_ID" in os.environ:
        signal.signal(preemption_signal(), _remember)


def take_early_signal() -> bool:
    """Whether the signal came before training could checkpoint; forgets it."""
    global _received_at
    received, _received_at = _received_at is not None, None
    return received
