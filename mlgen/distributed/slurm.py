"""What Slurm started this process as, and a check that the Trainer agrees with it.

Lightning's SLURMEnvironment takes ranks and world size from srun but checks them against
`trainer.devices`/`num_nodes` only in its own launcher, which srun jobs never use. A mismatch
then either hangs (the process group waits for ranks that never start) or trains unrelated
copies into one run dir. mlgen checks before fitting and fails with a message instead.
"""

from __future__ import annotations

import os
import re

from mlgen.errors import ConfigError

# Job names with which Lightning ignores Slurm (interactive allocations); we do the same.
_INTERACTIVE_JOB_NAMES = ("bash", "interactive")


def _first_count(tasks_per_node: str) -> int:
    """Slurm writes tasks per node as e.g. `2`, `2(x3)` or `2(x2),1`: the first node's count."""
    match = re.match(r"\d+", tasks_per_node)
    if not match:
        raise ValueError(f"cannot read a task count from {tasks_per_node!r}")
    return int(match.group())


def step_layout() -> tuple[int, int] | None:
    """(tasks per node, nodes) of the srun step this process is a task of; None outside a step
    (no Slurm, or the batch script itself)."""
    if "SLURM_STEP_ID" not in os.environ or "SLURM_STEP_TASKS_PER_NODE" not in os.environ:
        return None
    return (_first_count(os.environ["SLURM_STEP_TASKS_PER_NODE"]),
            int(os.environ.get("SLURM_STEP_NUM_NODES", "1")))


def tasks_per_node(default: int | str) -> int | str:
    """`${mlgen_slurm_tasks_per_node:D}`: devices per node = srun's tasks per node, D outside srun."""
    layout = step_layout()
    return layout[0] if layout else default


def num_nodes(default: int) -> int:
    """`${mlgen_slurm_nodes:D}`: the srun step's node count, D outside srun."""
    layout = step_layout()
    return layout[1] if layout else default


def in_slurm_job() -> bool:
    """True in a Slurm batch job or step that Lightning treats as Slurm (not an interactive shell)."""
    return "SLURM_JOB_ID" in os.environ and os.environ.get("SLURM_JOB_NAME") not in _INTERACTIVE_JOB_NAMES


def check_trainer_matches_slurm(devices: int, nodes: int) -> None:
    """Raise ConfigError unless `devices` per node × `nodes` is exactly what Slurm started."""
    if not in_slurm_job():
        return
    layout = step_layout()
    if layout is None:
        if devices * nodes > 1:
            raise ConfigError(
                f"trainer.devices={devices} × trainer.num_nodes={nodes} asks for {devices * nodes} "
                f"processes, but mlgen-train runs in the batch script of Slurm job "
                f"{os.environ['SLURM_JOB_ID']} without srun, so only one starts and it would wait for "
                f"the others forever. Fix: launch it as `srun mlgen-train ...` in a job with "
                f"--ntasks-per-node={devices} --nodes={nodes} (slurm/train.sbatch does this)."
            )
        return
    slurm_tasks, slurm_nodes = layout
    if (devices, nodes) != (slurm_tasks, slurm_nodes):
        raise ConfigError(
            f"trainer.devices={devices} and trainer.num_nodes={nodes} disagree with Slurm, which "
            f"started {slurm_tasks} task(s) per node on {slurm_nodes} node(s); DDP would hang or "
            f"train unrelated copies. Fix: trainer.devices={slurm_tasks} trainer.num_nodes={slurm_nodes} "
            f"(trainer=ddp and trainer=ddp_cpu take both from srun), or submit with "
            f"--ntasks-per-node={devices} --nodes={nodes}."
        )
