"""A DDP rank that dies (kill -9, as the OOM killer or a node fault does) ends the whole Slurm job at once:
the batch scripts run `srun --kill-on-bad-exit=1`. Without it the surviving ranks wait for the dead one
(at the rendezvous, or with NCCL in their next collective) until the process group's 30-min timeout, and
the allocation is spent doing nothing."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from .jobs import CPU_SBATCH, QUIET, Job, checkpoint, submit
from .slurm_cluster import LocalSlurmCluster

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def job_rank_pids(job_id: str, rank: int) -> list[int]:
    """PIDs of the processes srun started as `rank` of the job (read from their environment)."""
    wanted = {f"SLURM_JOB_ID={job_id}".encode(), f"SLURM_PROCID={rank}".encode()}
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = set((entry / "environ").read_bytes().split(b"\0"))
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if wanted <= environ and b"mlgen-train" in cmdline:
            pids.append(int(entry.name))
    return pids


def kill_rank_one(job: Job, timeout: float, settle: float = 0.5) -> None:
    """SIGKILL rank 1 of the job once its process has run for `settle` seconds: still seconds before DDP's
    rendezvous (importing torch alone takes longer), but after Slurm has finished launching the step. A task
    killed within milliseconds of its exec can die before srun hears it started, and srun then never learns
    that it ended (Slurm 22.05; seen once in CI: killed 23 ms after launch, the job stayed RUNNING)."""
    deadline = time.monotonic() + timeout
    while not job_rank_pids(job.job_id, rank=1):
        assert time.monotonic() < deadline, f"no rank-1 process of job {job.job_id}:\n{job.text()[-3000:]}"
        time.sleep(0.05)
    time.sleep(settle)
    victims = job_rank_pids(job.job_id, rank=1)
    assert victims, f"rank 1 of job {job.job_id} ended by itself:\n{job.text()[-3000:]}"
    for pid in victims:
        os.kill(pid, signal.SIGKILL)


def assert_fails_at_once(job: Job) -> None:
    """The job ends FAILED within a minute of the kill (srun reports the killed task)."""
    try:
        assert job.wait(timeout=60) == "FAILED", job.text()[-3000:]
    finally:
        job.cluster.run(["scancel", job.job_id], check=False)  # never leave a hanging job to later tests
    assert "task 1: Killed" in job.text(), job.text()[-3000:]


@pytest.mark.parametrize("script", ["train.sbatch", "multinode.sbatch"])
def test_a_rank_dying_at_start_fails_the_job_instead_of_leaving_the_others_at_the_rendezvous(
        slurm_cluster: LocalSlurmCluster, tmp_path: Path, script: str) -> None:
    """A rank that dies before DDP's rendezvous (a node with a broken environment): without
    --kill-on-bad-exit rank 0 waits for it until the 30-min timeout."""
    layout = ["--ntasks-per-node=2"] if script == "train.sbatch" else ["--nodes=2", "--ntasks-per-node=1"]
    job = submit(slurm_cluster, tmp_path, script, [*CPU_SBATCH, *layout], ["trainer=ddp_cpu", "logger=csv", *QUIET])
    kill_rank_one(job, timeout=60)
    assert_fails_at_once(job)


def test_a_rank_killed_in_training_fails_the_job_and_keeps_the_last_checkpoint(
        slurm_cluster: LocalSlurmCluster, tmp_path: Path) -> None:
    """Mid-training (on GPUs NCCL would wait for the dead rank; gloo on CPU sees the reset connection)."""
    job = submit(slurm_cluster, tmp_path, "train.sbatch", [*CPU_SBATCH, "--ntasks-per-node=2"],
                 ["trainer=ddp_cpu", "trainer.max_epochs=1000", "logger=csv", *QUIET])
    last = job.run_dir / "checkpoints" / "last.ckpt"
    job.wait_for_file(last, timeout=120)  # training is under way
    kill_rank_one(job, timeout=10)
    assert_fails_at_once(job)
    assert checkpoint(last)["global_step"] > 0  # written before the fault, and whole
