"""Which run a process belongs to: its output dir name, its W&B id under Slurm, whether it is rank 0.

Every task of a Slurm job (and every requeue of it) must agree on these before Lightning starts, so
they are read from the environment that srun, torchrun and Lightning's launcher set.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from typing import Any

from mlgen.distributed.run_dir import claim_run_dir, current_attempt, job_tag

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


def wandb_run_id(output_dir: str) -> str | None:
    """W&B run id of a Slurm job: the same for every requeue of the job, so the resumed run
    continues the curves of the preempted one (used with `resume: allow`); None (W&B picks one)
    outside Slurm.

    The job id alone is not unique: job ids restart when a cluster's state is wiped and repeat
    across clusters, and all jobs of a multirun inside one allocation share it. A short hash of
    the run's absolute output dir (itself named after the job, and per job in a multirun) tells
    those apart while staying fixed across requeues.
    """
    tag = job_tag()
    if tag is None:
        return None
    cluster = os.environ.get("SLURM_CLUSTER_NAME", "slurm")
    digest = hashlib.sha1(os.path.abspath(output_dir).encode()).hexdigest()[:8]
    return f"{cluster}-{tag}-{digest}"


def is_rank_zero() -> bool:
    """True unless this process is a non-zero rank of a distributed job, judged from the variables
    srun (SLURM_PROCID), torchrun (RANK) and Lightning's own DDP launcher (LOCAL_RANK, NODE_RANK)
    set before Hydra composes, i.e. before Lightning can tell."""
    return all(int(os.environ.get(var, "0") or 0) == 0 for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"))


def if_rank_zero(on_rank_zero: Any, elsewhere: Any) -> Any:
    """`${mlgen_if_rank_zero:A,B}`: A on rank 0, B on the other ranks (e.g. no Hydra log file there)."""
    return on_rank_zero if is_rank_zero() else elsewhere
