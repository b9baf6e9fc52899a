"""The local Slurm harness really runs multi-task steps, batch jobs and requeues."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .slurm_cluster import LocalSlurmCluster

pytestmark = pytest.mark.slurm


def test_srun_runs_two_ranks(slurm_cluster: LocalSlurmCluster, tmp_path: Path) -> None:
    out = slurm_cluster.run(["srun", "-n2", "bash", "-c", "echo rank=$SLURM_PROCID"],
                            cwd=tmp_path, timeout=30).stdout
    assert sorted(out.split()) == ["rank=0", "rank=1"]


def test_two_node_step_runs_one_task_on_each_node(slurm_cluster: LocalSlurmCluster, tmp_path: Path) -> None:
    assert slurm_cluster.run(["sinfo", "-h", "-N", "-o", "%N"]).stdout.split() == ["n1", "n2"]
    out = slurm_cluster.run(["srun", "-N2", "--ntasks-per-node=1", "bash", "-c",
                             "echo $SLURM_PROCID:$SLURM_NODEID:$SLURMD_NODENAME"], cwd=tmp_path, timeout=30).stdout
    assert sorted(out.split()) == ["0:0:n1", "1:1:n2"]


def test_sbatch_two_tasks_completes(slurm_cluster: LocalSlurmCluster, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    job = slurm_cluster.sbatch(
        ["--ntasks=2", f"--output={out}", "--wrap", "srun bash -c 'echo rank=$SLURM_PROCID'"],
        cwd=tmp_path)
    assert slurm_cluster.wait(job, timeout=30) == "COMPLETED", out.read_text()
    assert sorted(out.read_text().split()) == ["rank=0", "rank=1"]


def test_requeue_sets_restart_count(slurm_cluster: LocalSlurmCluster, tmp_path: Path) -> None:
    # First run marks itself and sleeps until requeued; the second run exits at once.
    script = tmp_path / "job.sh"
    script.write_text(
        "#!/bin/bash\n"
        "n=${SLURM_RESTART_COUNT:-0}\n"
        'echo "restart=$n" > "run_$n.txt"\n'
        '[ "$n" = 0 ] && sleep 120\n'
        "exit 0\n")
    job = slurm_cluster.sbatch(["--requeue", "--ntasks=1", f"--output={tmp_path}/slurm-%j.out",
                                str(script)], cwd=tmp_path)
    first = tmp_path / "run_0.txt"
    deadline = time.monotonic() + 30
    while not first.exists():
        assert time.monotonic() < deadline, f"first run never started: {slurm_cluster.state(job)}"
        time.sleep(0.2)
    slurm_cluster.run(["scontrol", "requeue", job])
    assert slurm_cluster.wait(job, timeout=60) == "COMPLETED"
    assert (tmp_path / "run_1.txt").read_text().strip() == "restart=1"
    assert not (tmp_path / "run_2.txt").exists()
