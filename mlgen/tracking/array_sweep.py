"""`trials.csv` for a Slurm job array of single runs (slurm/sweep.sbatch), as a Hydra multirun writes it.

Each array task is a plain `mlgen-train` run in `runs/slurm-<array job>_<task>`, so Hydra's multirun
callbacks never see them together. This Hydra callback (`hydra.callbacks.array_trials` in
conf/hydra/default.yaml) writes the task's `trial.json` at the end of its run (rank 0 only), numbered
by the array task id, then gathers the `trial.json` of every task of the array that has finished into
`multiruns/slurm-<array job>/trials.csv` and `trials.json` (mlgen.tracking.sweep_summary's format).
Tasks end in any order, so each rewrites the summary under a file lock and the last one's is complete.
Written by hand: neither Slurm nor Hydra collects an array's results.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict, read_write

from mlgen.distributed.run_id import is_rank_zero
from mlgen.tracking.sweep_summary import TRIAL_FILE, sweep_direction, trial_record, write_summary

log = logging.getLogger(__name__)


def array_sweep_dir(run_dir: Path, array_job: str) -> Path:
    """`<log dir>/<task>/multiruns/slurm-<array job>` for a run dir `<log dir>/<task>/runs/slurm-<job>_<i>`."""
    return run_dir.parent.parent / "multiruns" / f"slurm-{array_job}"


def collect_array_trials(runs_dir: Path, array_job: str) -> list[dict[str, Any]]:
    """The trial.json of every task of `array_job` under `runs_dir`, by task id."""
    found = [json.loads(p.read_text()) for p in runs_dir.glob(f"slurm-{array_job}_*/{TRIAL_FILE}")]
    return sorted(found, key=lambda t: t["number"])


class ArrayTrials(Callback):
    """Records a Slurm array task's trial and refreshes its array's summary (no-op outside arrays)."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
        if not (array_job and task) or job_return.hydra_cfg is None or not is_rank_zero():
            return
        if job_return.hydra_cfg.hydra.mode != RunMode.RUN:
            return  # a multirun inside an array task has its own summary
        job = job_return.hydra_cfg.hydra.job
        with read_write(job), open_dict(job):
            job.num = int(task)  # a single run has no job number: the task id is the trial's
        record = trial_record(job_return)
        run_dir = Path(record["run_dir"])
        (run_dir / TRIAL_FILE).write_text(json.dumps(record, indent=2) + "\n")
        sweep_dir = array_sweep_dir(run_dir, array_job)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        with open(sweep_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # tasks that end together take turns
            trials = collect_array_trials(run_dir.parent, array_job)
            write_summary(sweep_dir, trials, sweep_direction(config, None))
        log.info("array %s: %d task(s) finished so far; summary in %s", array_job, len(trials),
                 sweep_dir / "trials.csv")
