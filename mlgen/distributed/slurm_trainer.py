"""What a Trainer gets inside a Slurm job: mlgen's SLURMEnvironment and the preemption and report callbacks."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from mlgen.distributed.job_report import SlurmJobReport
from mlgen.distributed.requeue import SlurmRequeue
from mlgen.distributed.slurm_environment import ResolvableSLURMEnvironment


def slurm_trainer_parts() -> tuple[dict[str, Any], list[pl.Callback]]:
    """Trainer arguments and callbacks: Lightning's Slurm environment with a first-node address that
    resolves and without its in-handler auto-requeue, which deadlocks under DDP; mlgen's DDP-safe
    SlurmRequeue instead (see requeue.py); and the per-rank and per-attempt lines of the job output."""
    return {"plugins": [ResolvableSLURMEnvironment()]}, [SlurmRequeue(), SlurmJobReport()]
