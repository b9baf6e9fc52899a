"""Make Lightning's DDP child processes join the current Hydra job of a multirun.

Without Slurm, Lightning starts DDP ranks 1.. by re-running the command line (`sys.argv`) with
`hydra.run.dir=<HydraConfig run.dir>` appended. In a multirun that command still holds `-m` and the
whole sweep, so each child starts a sweep of its own in a new dir and the ranks never meet (a hang).
Pointing `sys.argv` at this job's own overrides and `run.dir` at this job's output dir makes the
child a single run of exactly this job, in this job's dir. The launcher also leaves LOCAL_RANK,
WORLD_SIZE, ... in the environment, which makes the next job's Trainer believe an outside launcher
started its ranks, so it waits for a rank 1 nobody starts; they are restored after each job.
Written by hand: neither Hydra nor Lightning handles it.
"""

from __future__ import annotations

import os
import sys

# What Lightning's subprocess launcher sets in the launching process.
_LAUNCHER_VARIABLES = ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
_saved_environment: dict[str, str | None] | None = None


def pin_ddp_children_to_this_job() -> None:
    """In a Hydra multirun job, rewrite what Lightning's subprocess launcher copies (no-op otherwise)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict, read_write

    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return
    global _saved_environment
    _saved_environment = {name: os.environ.get(name) for name in _LAUNCHER_VARIABLES}
    sys.argv = [sys.argv[0], *hydra_cfg.overrides.task]
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir


def release_ddp_job() -> None:
    """After a multirun job: put back the launcher variables as they were before it (no-op otherwise)."""
    global _saved_environment
    for name, value in (_saved_environment or {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _saved_environment = None
