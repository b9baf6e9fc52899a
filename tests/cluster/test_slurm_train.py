"""slurm/train.sbatch and slurm/multinode.sbatch on a real local Slurm with two nodes: a 2-rank DDP job
on CPU, and the same training as a 2-node job preempted with SIGUSR1, checkpointed, requeued and
resumed in its own run dir, CSV file and W&B run, ending bit-identical to the uninterrupted job."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from tests.helpers.wandb_runs import offline_run_dirs, read_offline_run

from .jobs import (
    CPU_SBATCH,
    LINE_PROGRESS,
    Job,
    checkpoint,
    csv_rows,
    optimizer_steps,
    printed_metric,
    steps_per_epoch,
    submit,
)
from .slurm_cluster import LocalSlurmCluster

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

EPOCHS, BATCH = 10, 16
# trainer=ddp_cpu under srun: devices and num_nodes come from the job's tasks; W&B and CSV loggers;
# progress as one line per epoch; checkpoints track the latest epoch, so last.ckpt is the final state
DDP = ["trainer=ddp_cpu", f"trainer.max_epochs={EPOCHS}", f"data.batch_size={BATCH}", "trainer.log_every_n_steps=1",
       "logger=[wandb,csv]", LINE_PROGRESS, "callbacks.model_summary=null", "callbacks.model_checkpoint.monitor=null"]
ONE_NODE_TWO_TASKS = [*CPU_SBATCH, "--ntasks-per-node=2"]
TWO_NODES_ONE_TASK = [*CPU_SBATCH, "--nodes=2", "--ntasks-per-node=1"]


def rank_lines(out: str) -> list[tuple[str, str, str]]:
    """(rank, Slurm node id, node name) of every rank line in a job's output."""
    return re.findall(r"rank (\d) of 2: Slurm node (\d) \((\w+)\) of job \d+, host \S+, device: cpu", out)


@pytest.fixture(scope="module")
def uninterrupted(slurm_cluster: LocalSlurmCluster, tmp_path_factory: pytest.TempPathFactory) -> Job:
    job = submit(slurm_cluster, tmp_path_factory.mktemp("uninterrupted"), "train.sbatch", ONE_NODE_TWO_TASKS, DDP)
    assert job.wait(timeout=300) == "COMPLETED", job.text()[-5000:]
    return job


def test_train_sbatch_runs_two_rank_ddp_and_only_rank0_writes(uninterrupted: Job, tmp_path: Path) -> None:
    out, run = uninterrupted.text(), uninterrupted.run_dir
    # both ranks joined one process group on the first node, and each said where it runs
    assert "Initializing distributed: GLOBAL_RANK: 0, MEMBER: 1/2" in out
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in out
    assert sorted(rank_lines(out)) == [("0", "0", "n1"), ("1", "0", "n1")]
    assert "[rank: 1] Seed set to 42" in out  # rank 1 logs to the job output only
    # each optimizer step consumed one batch from each rank: the split is halved per epoch
    total = EPOCHS * steps_per_epoch(run, ranks=2)
    last = checkpoint(run / "checkpoints" / "last.ckpt")
    assert last["global_step"] == total and optimizer_steps(last) == total
    assert printed_metric(out, "test/acc") > 0.9

    # readable output: no progress-bar redraws, one line per epoch from rank 0, W&B's mode said once
    assert "\r" not in out
    epochs = re.findall(r"^epoch (\d+)/10 done \(step (\d+),", out, flags=re.M)
    assert epochs == [(str(e + 1), str((e + 1) * total // EPOCHS)) for e in range(EPOCHS)]
    assert out.count("W&B is offline") == 1

    # one run dir holding rank 0's files only: no per-rank logs, one W&B run, one CSV file, one log file
    assert [p.name for p in run.parent.iterdir()] == [run.name]
    assert sorted(p.name for p in run.iterdir()) == [".hydra", ".slurm-job.json", "checkpoints", "csv", "train.log",
                                                     "wandb"]
    log = (run / "train.log").read_text()
    assert "[rank: 0] Seed set to 42" in log and "[rank: 1]" not in log
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [f"epoch_{EPOCHS - 1:03d}.ckpt", "last.ckpt"]
    (wandb_run,) = offline_run_dirs(run)
    record = read_offline_run(wandb_run)
    assert wandb_run.name.endswith("-" + record.run["run_id"])
    assert record.run["run_id"].startswith(f"ci-{uninterrupted.job_id}-")
    assert record.summary["test/acc"] == pytest.approx(printed_metric(out, "test/acc"), abs=1e-4)


def test_preempted_two_node_job_requeues_and_ends_bit_identical(
    slurm_cluster: LocalSlurmCluster, uninterrupted: Job, tmp_path: Path
) -> None:
    job = submit(slurm_cluster, tmp_path, "multinode.sbatch", TWO_NODES_ONE_TASK, DDP)
    job.wait_for_file(job.run_dir / "checkpoints" / "epoch_000.ckpt", timeout=240)  # mid-training
    slurm_cluster.run(["scancel", "--signal=USR1", job.job_id])
    assert job.wait(timeout=300) == "COMPLETED", job.text()[-5000:]
    out, run = job.text(), job.run_dir

    # one rank on each node, in both attempts
    assert rank_lines(out) and sorted(set(rank_lines(out))) == [("0", "0", "n1"), ("1", "1", "n2")]
    assert len(rank_lines(out)) == 4
    # requeued once, by the job itself; the second attempt said so and resumed in the same run dir
    assert job.field("Restarts") == "1"
    assert "SLURM_RESTART_COUNT=0" in out and "SLURM_RESTART_COUNT=1" in out
    hpc = run / "hpc_ckpt_1.ckpt"
    saved = checkpoint(hpc)["global_step"]
    assert f"SIGUSR1 received: saved {hpc} at global step {saved}" in out
    assert f"attempt 2 of job {job.job_id}, resuming at step {saved} from {hpc}" in out
    total = checkpoint(uninterrupted.run_dir / "checkpoints" / "last.ckpt")["global_step"]
    assert 0 < saved < total

    # the same optimizer steps and bit for bit the same weights as the uninterrupted 1-node job
    last = checkpoint(run / "checkpoints" / "last.ckpt")
    reference = checkpoint(uninterrupted.run_dir / "checkpoints" / "last.ckpt")
    assert last["global_step"] == total and optimizer_steps(last) == total
    for name, tensor in reference["state_dict"].items():
        torch.testing.assert_close(last["state_dict"][name], tensor, rtol=0, atol=0)
    assert printed_metric(out, "test/acc") == printed_metric(uninterrupted.text(), "test/acc")

    # the CSV file holds every row of both attempts once: the uninterrupted job's rows, step and value, the
    # train means of the interrupted epoch too (the checkpoint holds each rank's running sums, not rank 0's)
    assert [row["step"] for row in csv_rows(run)] == [row["step"] for row in csv_rows(uninterrupted.run_dir)]
    assert csv_rows(run) == csv_rows(uninterrupted.run_dir)

    # one W&B run across both attempts; the second continues at the checkpoint's step, rows as uninterrupted
    first, second = (read_offline_run(d) for d in offline_run_dirs(run))
    assert first.run["run_id"] == second.run["run_id"]
    assert first.run["run_id"].startswith(f"ci-{job.job_id}-")
    reference_rows = read_offline_run(offline_run_dirs(uninterrupted.run_dir)[0]).rows_with("train/loss_step")
    steps = [[row["trainer/global_step"] for row in r.rows_with("train/loss_step")] for r in (first, second)]
    assert steps[0] + steps[1] == [row["trainer/global_step"] for row in reference_rows]
    assert max(steps[0]) == saved - 1 and min(steps[1]) == saved
    # W&B's own step goes on increasing across attempts, so `wandb sync` of both keeps every row
    w_steps = [row["_step"] for r in (first, second) for row in r.history]
    assert w_steps == sorted(set(w_steps)) and second.history[0]["_step"] == saved
    assert "test/acc" in second.summary
    assert out.count("W&B is offline") == 2  # once per attempt
    # its sync hint is one command that uploads every attempt, in order
    hint = f"Upload later with: wandb sync {run}/wandb/offline-run-*"
    assert hint in out and sorted(run.glob("wandb/offline-run-*")) == offline_run_dirs(run)
