"""slurm/train.sbatch on a real local Slurm: a 2-task DDP job on CPU, and the same job preempted with
SIGUSR1, checkpointed, requeued and resumed in its own run dir and W&B run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from tests.helpers.config import compose_config
from tests.helpers.wandb_runs import offline_run_dirs, read_offline_run

from .jobs import (
    CPU_SBATCH,
    QUIET,
    Job,
    checkpoint,
    optimizer_steps,
    printed_metric,
    submit,
)
from .slurm_cluster import LocalSlurmCluster

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

EPOCHS, BATCH = 10, 16
# trainer=ddp_cpu under srun: devices and num_nodes come from the job's tasks (2 per node, 1 node)
DDP = ["trainer=ddp_cpu", f"trainer.max_epochs={EPOCHS}", f"data.batch_size={BATCH}",
       "trainer.log_every_n_steps=1", *QUIET]
TWO_TASKS = [*CPU_SBATCH, "--ntasks-per-node=2"]


def steps_per_epoch(tmp_path: Path) -> int:
    """Batches per rank and epoch when the digits training split is halved between 2 ranks."""
    from hydra.utils import instantiate

    data = instantiate(compose_config("train", [], tmp_path / "compose").data)
    data.setup("fit")
    return math.ceil(len(data.datasets["train"]) // 2 / BATCH)


@pytest.fixture(scope="module")
def uninterrupted(slurm_cluster: LocalSlurmCluster, tmp_path_factory: pytest.TempPathFactory) -> Job:
    job = submit(slurm_cluster, tmp_path_factory.mktemp("uninterrupted"), "train.sbatch", TWO_TASKS, DDP)
    assert job.wait(timeout=240) == "COMPLETED", job.text()[-5000:]
    return job


def test_train_sbatch_runs_two_rank_ddp_and_only_rank0_writes(uninterrupted: Job, tmp_path: Path) -> None:
    out, run = uninterrupted.text(), uninterrupted.run_dir
    # both ranks joined one process group and trained
    assert "Initializing distributed: GLOBAL_RANK: 0, MEMBER: 1/2" in out
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in out
    assert "[rank: 1] Seed set to 42" in out  # rank 1 logs to the job output only
    # each optimizer step consumed one batch from each rank: the split is halved per epoch
    total = EPOCHS * steps_per_epoch(tmp_path)
    last = checkpoint(run / "checkpoints" / "last.ckpt")
    assert last["global_step"] == total and optimizer_steps(last) == total
    assert printed_metric(out, "test/acc") > 0.9

    # one run dir holding rank 0's files only: no per-rank logs, one W&B run, one log file
    assert [p.name for p in run.parent.iterdir()] == [run.name]
    assert sorted(p.name for p in run.iterdir()) == [".hydra", "checkpoints", "train.log", "wandb"]
    log = (run / "train.log").read_text()
    assert "[rank: 0] Seed set to 42" in log and "[rank: 1]" not in log
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [f"epoch_{EPOCHS - 1:03d}.ckpt", "last.ckpt"]
    (wandb_run,) = offline_run_dirs(run)
    record = read_offline_run(wandb_run)
    assert wandb_run.name.endswith("-" + record.run["run_id"])
    assert record.run["run_id"].startswith(f"ci-{uninterrupted.job_id}-")
    assert record.summary["test/acc"] == pytest.approx(printed_metric(out, "test/acc"), abs=1e-4)


def test_preempted_job_requeues_and_resumes_at_the_saved_step(
    slurm_cluster: LocalSlurmCluster, uninterrupted: Job, tmp_path: Path
) -> None:
    job = submit(slurm_cluster, tmp_path, "train.sbatch", TWO_TASKS, DDP)
    job.wait_for_file(job.run_dir / "checkpoints" / "epoch_000.ckpt", timeout=180)  # mid-training
    slurm_cluster.run(["scancel", "--signal=USR1", job.job_id])
    assert job.wait(timeout=240) == "COMPLETED", job.text()[-5000:]
    out, run = job.text(), job.run_dir

    # requeued once, by the job itself, and the second attempt started in the same run dir
    assert job.field("Restarts") == "1"
    assert "SLURM_RESTART_COUNT=0" in out and "SLURM_RESTART_COUNT=1" in out
    hpc = run / "hpc_ckpt_1.ckpt"
    saved = checkpoint(hpc)["global_step"]
    assert f"SIGUSR1 received: saved {hpc} at global step {saved}" in out
    assert f"Restored all states from the checkpoint at {hpc}" in out
    total = checkpoint(uninterrupted.run_dir / "checkpoints" / "last.ckpt")["global_step"]
    assert 0 < saved < total

    # same number of optimizer steps, and the same weights, as the uninterrupted job
    last = checkpoint(run / "checkpoints" / "last.ckpt")
    reference = checkpoint(uninterrupted.run_dir / "checkpoints" / "last.ckpt")
    assert last["global_step"] == total and optimizer_steps(last) == total
    for name, tensor in reference["state_dict"].items():
        torch.testing.assert_close(last["state_dict"][name], tensor, rtol=1e-5, atol=1e-6)
    assert printed_metric(out, "test/acc") == pytest.approx(printed_metric(uninterrupted.text(), "test/acc"), abs=0.01)

    # one W&B run id across both attempts; the second continues where the checkpoint was taken
    first, second = (read_offline_run(d) for d in offline_run_dirs(run))
    assert first.run["run_id"] == second.run["run_id"]
    assert first.run["run_id"].startswith(f"ci-{job.job_id}-")
    steps = [[row["trainer/global_step"] for row in r.rows_with("train/loss_step")] for r in (first, second)]
    # rows carry the 0-based index of the step; Lightning does not log the first step after a restore
    assert max(steps[0]) == saved - 1 and saved <= min(steps[1]) <= saved + 1
    assert max(steps[1]) >= total - 1 and "test/acc" in second.summary  # it trained to the end
