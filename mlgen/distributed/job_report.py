"""What a Slurm job's output says about each attempt: where every rank runs, and whether it resumed.

A job's `slurm-<id>.out` collects all ranks and all attempts; these lines make it readable: each rank
says once where it runs (rank, node, host, devices), and a requeued attempt says which attempt it is
and at which step it resumed.
"""

from __future__ import annotations

import logging
import os
import socket

import pytorch_lightning as pl

from mlgen.distributed.run_dir import job_tag

log = logging.getLogger(__name__)


class SlurmJobReport(pl.Callback):
    """Logs the rank line on every rank at set-up and the attempt line on rank 0 at the start of training."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        log.info("rank %d of %d: Slurm node %s (%s) of job %s, host %s, device: %s", trainer.global_rank,
                 trainer.world_size, os.environ.get("SLURM_NODEID", "?"), os.environ.get("SLURMD_NODENAME", "?"),
                 os.environ.get("SLURM_JOB_ID", "?"), socket.gethostname(), trainer.strategy.root_device)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
        if restarts == 0 or not trainer.is_global_zero:
            return
        job = job_tag()
        if trainer.ckpt_path:
            log.info("attempt %d of job %s, resuming at step %d from %s", restarts + 1, job, trainer.global_step,
                     trainer.ckpt_path)
        else:
            log.info("attempt %d of job %s: no checkpoint of an earlier attempt in %s, training from step 0",
                     restarts + 1, job, trainer.default_root_dir)
