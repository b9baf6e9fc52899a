"""Which run a process belongs to: its output dir name, its W&B id under Slurm, whether it is rank 0.

Every task of a Slurm job (and every requeue of it) must agree on these before Lightning starts, so
they are read from the environment that srun, torchrun and Lightning's launcher set.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from pathlib import Path
from typing import Any

from mlgen.distributed.run_dir import claim_run_dir, current_attempt, job_tag
from mlgen.errors import ConfigError, exit_on_user_error

# Fixed once per process, so every job of a multirun and every re-resolution agrees.
_LOCAL_RUN_ID = time.strftime("%Y-%m-%d_%H-%M-%S") + "_" + secrets.token_hex(2)


def run_id(parent: str = "") -> str:
    """`${mlgen_run_id:PARENT}`: name of a run's output dir under PARENT, unique per launch.

    A timestamp alone collides when two runs start in the same second, so a random suffix
    is added. Under Slurm it is `slurm-<job id>` (`.2`, `.3`, ... when an old dir of another job
    has that name), the same for all tasks of the job and for its requeues, so the ranks agree and
    a requeued job finds its checkpoint (see mlgen/distributed/run_dir.py).
    """
    attempt = current_attempt()
    if attempt is None:
        return _LOCAL_RUN_ID
    base = f"slurm-{attempt.job}"
    return claim_run_dir(parent, base, attempt, is_rank_zero()) if parent else base


@exit_on_user_error  # Hydra creates the dir right after: a bad log dir must stop here, in one paragraph
def run_dir(parent: str, task: str, ckpt_path: str | None = None) -> str:
    """`${mlgen_run_dir:PARENT,TASK,CKPT}`: the run dir of a job. A training run resumed from a checkpoint
    in `<run dir>/checkpoints/` continues in that run dir (same checkpoints/, whose best score the
    ModelCheckpoint state then keeps, same CSV and W&B run); any other run gets `PARENT/<run_id>`.
    `hydra.run.dir=<dir>` on the command line still wins: that is how a resume asks for a new dir."""
    if task == "train" and ckpt_path:
        checkpoints = Path(ckpt_path).expanduser().resolve().parent
        if checkpoints.name == "checkpoints" and (checkpoints.parent / ".hydra").is_dir():
            return str(checkpoints.parent)
    _check_can_create(Path(parent))
    return f"{parent}/{run_id(parent)}"


def cannot_create(folder: Path) -> str | None:
    """Why files can't be written under `folder` (its nearest existing ancestor is a file, or is not writable,
    e.g. on a read-only filesystem, which stops root too), naming that ancestor; None when they can."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK):
        return f"{existing} is not writable (a read-only filesystem or no permission)"
    return None


def _check_can_create(folder: Path) -> None:
    problem = cannot_create(folder)
    if problem:
        raise ConfigError(
            f"paths.log_dir: run dirs go under {folder}, but {problem}. Fix: point MLGEN_LOG_DIR (or "
            f"paths.log_dir=<dir>) at a writable folder, e.g. MLGEN_LOG_DIR=$HOME/mlgen-logs.")


def wandb_run_id(output_dir: str | None) -> str | None:
    """W&B run id of a Slurm job: the same for every requeue of the job, so the resumed run
    continues the curves of the preempted one (used with `resume: allow`); None (W&B picks one)
    outside Slurm.

    The job id alone is not unique: job ids restart when a cluster's state is wiped and repeat
    across clusters, and all jobs of a multirun inside one allocation share it. A short hash of
    the run's absolute output dir (itself named after the job, and per job in a multirun) tells
    those apart while staying fixed across requeues. Outside Slurm: the W&B run already in the run
    dir (a resume with ckpt_path= continues there), else None. No output dir (`--cfg job --resolve` only
    prints the config, and Hydra makes no run dir for it): None.
    """
    if output_dir is None:
        return None
    tag = job_tag()
    if tag is None:
        return _earlier_wandb_run(output_dir)
    cluster = os.environ.get("SLURM_CLUSTER_NAME", "slurm")
    digest = hashlib.sha1(os.path.abspath(output_dir).encode()).hexdigest()[:8]
    return f"{cluster}-{tag}-{digest}"


def _earlier_wandb_run(output_dir: str) -> str | None:
    """Id of the newest W&B run a local run wrote in this run dir (W&B names its folders
    `[offline-]run-<date>_<time>-<id>`), so a resume in that dir continues it; None for a new run dir."""
    runs = sorted(Path(output_dir, "wandb").glob("*run-*-*"), key=lambda p: p.stat().st_mtime)
    return runs[-1].name.rsplit("-", 1)[1] if runs else None


def is_rank_zero() -> bool:
    """True unless this process is a non-zero rank of a distributed job, judged from the variables
    srun (SLURM_PROCID), torchrun (RANK) and Lightning's own DDP launcher (LOCAL_RANK, NODE_RANK)
    set before Hydra composes, i.e. before Lightning can tell."""
    return all(int(os.environ.get(var, "0") or 0) == 0 for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"))


def if_rank_zero(on_rank_zero: Any, elsewhere: Any) -> Any:
    """`${mlgen_if_rank_zero:A,B}`: A on rank 0, B on the other ranks (e.g. no Hydra log file there)."""
    return on_rank_zero if is_rank_zero() else elsewhere
