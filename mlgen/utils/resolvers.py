"""OmegaConf resolvers that configs use; registered on import, before Hydra composes."""

from __future__ import annotations

import os
import secrets
import time

from omegaconf import OmegaConf

# Fixed once per process, so every job of a multirun and every re-resolution agrees.
_LOCAL_RUN_ID = time.strftime("%Y-%m-%d_%H-%M-%S") + "_" + secrets.token_hex(2)


def run_id() -> str:
    """Name of a run's output dir: unique per launch, shared by all tasks of one Slurm job.

    A timestamp alone collides when two runs start in the same second, so a random suffix
    is added. Under Slurm every task of a job (and every requeue of it) maps to the same dir,
    so rank 0 and rank 1 agree and a requeued job finds its checkpoint.
    """
    job = os.environ.get("SLURM_ARRAY_JOB_ID")
    if job:
        return f"slurm-{job}_{os.environ.get('SLURM_ARRAY_TASK_ID', '0')}"
    job = os.environ.get("SLURM_JOB_ID")
    if job:
        return f"slurm-{job}"
    return _LOCAL_RUN_ID


def wandb_mode() -> str:
    """W&B mode that never prompts: `WANDB_MODE` wins, else online only when credentials exist."""
    from mlgen.utils.wandb_mode import resolve_wandb_mode

    return resolve_wandb_mode()


def register() -> None:
    """Register mlgen's resolvers (idempotent)."""
    for name, func in {"mlgen_run_id": run_id, "mlgen_wandb_mode": wandb_mode}.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, func)


register()
