"""Requeue edge cases on a real local Slurm: a new job whose id names an old job's run dir trains from
scratch in a dir of its own and leaves the old one untouched; and a SIGUSR1 before training starts is
reported while the job runs on, instead of killing it with nothing saved."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mlgen.distributed.run_dir import MARKER

from .jobs import CPU_SBATCH, QUIET, checkpoint, submit
from .slurm_cluster import LocalSlurmCluster

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

EPOCHS = 2
TINY = ["trainer=cpu", f"trainer.max_epochs={EPOCHS}", "logger=csv", "test=false", *QUIET]
ONE_TASK = [*CPU_SBATCH, "--ntasks-per-node=1"]


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_fresh_job_never_resumes_another_jobs_run_dir(slurm_cluster: LocalSlurmCluster, tmp_path: Path) -> None:
    # An earlier job (on a controller whose state was since wiped) left run dirs named after the next
    # job ids, with a checkpoint Lightning would resume from: one with mlgen's marker, one without.
    probe = slurm_cluster.sbatch(["--wrap", "true", f"--output={tmp_path}/probe.out"], cwd=tmp_path)
    runs = tmp_path / "logs" / "train" / "runs"
    source = Path(__file__).parent / "test_slurm_requeue.py"  # any file; Lightning only looks at the name
    for next_id in (int(probe) + 1, int(probe) + 2):
        old = runs / f"slurm-{next_id}"
        old.mkdir(parents=True)
        shutil.copy(source, old / "hpc_ckpt_1.ckpt")
        if next_id % 2:
            (old / MARKER).write_text(json.dumps({"cluster": "ci", "job": str(next_id), "claimed_at": 1.0,
                                                  "attempts": [{"submitted": "2020-01-01T00:00:00", "step": "0"}]}))
    before = snapshot(runs)

    job = submit(slurm_cluster, tmp_path, "train.sbatch", ONE_TASK, TINY)
    assert int(job.job_id) in (int(probe) + 1, int(probe) + 2)
    assert job.wait(timeout=240) == "COMPLETED", job.text()[-5000:]
    out = job.text()
    own = runs / f"slurm-{job.job_id}.2"
    assert (f"{runs / f'slurm-{job.job_id}'} belongs to another Slurm job {job.job_id} (job ids repeat when a "
            f"controller's state is reset or clusters share a filesystem); it is left untouched and this job "
            f"writes to {own}") in out
    assert "Restored all states" not in out  # trained from scratch
    assert checkpoint(own / "checkpoints" / "last.ckpt")["epoch"] == EPOCHS - 1
    marker = json.loads((own / MARKER).read_text())
    assert marker["cluster"] == "ci" and marker["job"] == job.job_id and len(marker["attempts"]) == 1
    assert {k: v for k, v in snapshot(runs).items() if not k.startswith(own.name)} == before  # old dirs untouched


def test_usr1_before_training_starts_is_reported_and_the_job_runs_on(
    slurm_cluster: LocalSlurmCluster, tmp_path: Path
) -> None:
    job = submit(slurm_cluster, tmp_path, "train.sbatch", ONE_TASK, TINY)
    job.wait_for_file(job.run_dir / ".hydra" / "config.yaml", timeout=120)  # composed; torch not imported yet
    slurm_cluster.run(["scancel", "--signal=USR1", job.job_id])
    assert job.wait(timeout=240) == "COMPLETED", job.text()[-5000:]
    out = job.text()
    assert "SIGUSR1 arrived before training started, so there was nothing to save: the job runs on" in out
    assert "submit with a --time well above them" in out
    assert job.field("Restarts") == "0"
    assert checkpoint(job.run_dir / "checkpoints" / "last.ckpt")["epoch"] == EPOCHS - 1
