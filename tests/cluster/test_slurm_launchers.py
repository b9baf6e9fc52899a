"""Sweeps on a real local Slurm: `hydra/launcher=submitit_slurm` multiruns and slurm/sweep.sbatch arrays;
and a job whose Trainer disagrees with its Slurm tasks fails at once with the fix in the message."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from .jobs import CPU_SBATCH, QUIET, job_env, optimizer_steps, steps_per_epoch, submit
from .slurm_cluster import LocalSlurmCluster

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SINGLE = ["trainer=cpu", "trainer.max_epochs=3", "logger=csv", *QUIET]


def _best_logged(run_dir: Path, metric: str) -> float:
    with open(run_dir / "csv" / "metrics.csv") as handle:
        return max(float(row[metric]) for row in csv.DictReader(handle) if row.get(metric))


def test_submitit_slurm_multirun_runs_every_job_on_the_cluster(slurm_cluster: LocalSlurmCluster, tmp_path: Path) -> None:
    launcher = ["hydra/launcher=submitit_slurm", "hydra.launcher.gpus_per_node=null",
                "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2", "hydra.launcher.timeout_min=10"]
    proc = subprocess.run(["mlgen-train", "-m", *launcher, "model.optimizer.lr=1e-3,3e-3", *SINGLE],
                          cwd=tmp_path, env={**slurm_cluster.env, **job_env(tmp_path)}, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    (sweep_dir,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    assert not (tmp_path / "logs" / "train" / "runs").exists()  # jobs kept the launcher's sweep dir
    summary = json.loads((sweep_dir / "trials.json").read_text())
    trials = summary["trials"]
    assert [t["status"] for t in trials] == ["completed", "completed"]
    assert [t["overrides"][0] for t in trials] == ["model.optimizer.lr=0.001", "model.optimizer.lr=0.003"]
    for t in trials:
        assert Path(t["run_dir"]) == sweep_dir / str(t["number"])
        assert t["objective"] == pytest.approx(_best_logged(Path(t["run_dir"]), "val/acc"), abs=1e-7)
    assert summary["best"]["objective"] == max(t["objective"] for t in trials)

    # each trial was a Slurm array task that completed on the cluster
    tasks = sorted(p.name for p in (sweep_dir / ".submitit").iterdir() if re.fullmatch(r"\d+_\d+", p.name))
    assert [t.split("_")[1] for t in tasks] == ["0", "1"]
    for task in tasks:
        assert slurm_cluster.wait(task, timeout=30) == "COMPLETED"  # submitit returns once the result is written


def test_submitit_preemption_signal_checkpoints_requeues_and_resumes(slurm_cluster: LocalSlurmCluster,
                                                                     tmp_path: Path) -> None:
    # submitit asks Slurm for USR2 before the time limit and would requeue the job from scratch in its own
    # handler; mlgen's requeue takes it over during fit: save between steps, requeue, resume, no lost step
    epochs, batch = 20, 8
    launcher = ["hydra/launcher=submitit_slurm", "hydra.launcher.gpus_per_node=null",
                "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2", "hydra.launcher.timeout_min=10"]
    overrides = [*launcher, "model.optimizer.lr=1e-3", "trainer=cpu", f"trainer.max_epochs={epochs}",
                 f"data.batch_size={batch}", "logger=csv", "test=false", *QUIET]
    proc = subprocess.Popen(["mlgen-train", "-m", *overrides], cwd=tmp_path, env={**slurm_cluster.env, **job_env(tmp_path)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not list((tmp_path / "logs" / "train" / "multiruns").glob("*/0/checkpoints/epoch_000.ckpt")):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0][-3000:]
            time.sleep(0.1)
        (sweep_dir,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
        (task,) = [p.name for p in (sweep_dir / ".submitit").iterdir() if re.fullmatch(r"\d+(_0)?", p.name)]
        slurm_cluster.run(["scancel", "--signal=USR2", task])
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    assert json.loads((sweep_dir / "trials.json").read_text())["trials"][0]["status"] == "completed"
    assert slurm_cluster.wait(task, timeout=30) == "COMPLETED"
    assert re.search(r"\bRestarts=1\b", slurm_cluster.run(["scontrol", "-o", "show", "job", task]).stdout)
    run = sweep_dir / "0"
    log = (sweep_dir / ".submitit" / task / f"{task}_0_log.out").read_text()
    hpc = run / "hpc_ckpt_1.ckpt"
    saved = torch.load(hpc, weights_only=False)["global_step"]
    assert f"SIGUSR2 received: saved {hpc} at global step {saved}" in log
    assert f"attempt 2 of job {task}, resuming at step {saved} from {hpc}" in log
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert 0 < saved < last["global_step"] == epochs * steps_per_epoch(run, ranks=1)
    assert optimizer_steps(last) == last["global_step"]


def test_sweep_sbatch_runs_one_override_line_per_array_task(slurm_cluster: LocalSlurmCluster, tmp_path: Path) -> None:
    lines = tmp_path / "sweep.txt"
    lines.write_text("model.optimizer.lr=1e-3\nmodel.optimizer.lr=3e-3 'tags=[a, b]'\n")
    job = submit(slurm_cluster, tmp_path, "sweep.sbatch", [*CPU_SBATCH, "--array=0-1"], [str(lines), *SINGLE])
    runs = tmp_path / "logs" / "train" / "runs"
    for task in ("0", "1"):
        assert slurm_cluster.wait(f"{job.job_id}_{task}", timeout=240) == "COMPLETED", \
            (tmp_path / f"slurm-{job.job_id}_{task}.out").read_text()[-3000:]
    assert sorted(p.name for p in runs.iterdir()) == [f"slurm-{job.job_id}_0", f"slurm-{job.job_id}_1"]
    overrides = [yaml.safe_load((runs / f"slurm-{job.job_id}_{t}" / ".hydra" / "overrides.yaml").read_text())
                 for t in ("0", "1")]
    assert overrides[0] == ["model.optimizer.lr=1e-3", *SINGLE]
    assert overrides[1] == ["model.optimizer.lr=3e-3", "tags=[a, b]", *SINGLE]
    for t in ("0", "1"):
        assert (runs / f"slurm-{job.job_id}_{t}" / "checkpoints" / "last.ckpt").exists()

    # the array's results in one trials.csv / trials.json, as a Hydra multirun writes them
    sweep_dir = tmp_path / "logs" / "train" / "multiruns" / f"slurm-{job.job_id}"
    with open(sweep_dir / "trials.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["number"], r["status"], r["model.optimizer.lr"]) for r in rows] == [
        ("0", "completed", "1e-3"), ("1", "completed", "3e-3")]
    for row, t in zip(rows, ("0", "1")):
        run_dir = runs / f"slurm-{job.job_id}_{t}"
        assert row["run_dir"] == str(run_dir) and row["objective_name"] == "val/acc"
        assert float(row["objective"]) == pytest.approx(_best_logged(run_dir, "val/acc"), abs=1e-7)
    best = max(rows, key=lambda r: float(r["objective"]))
    assert [r["best"] for r in rows] == [str(r is best) for r in rows]
    assert json.loads((sweep_dir / "trials.json").read_text())["best"]["number"] == int(best["number"])


def test_devices_disagreeing_with_slurm_tasks_fail_fast(slurm_cluster: LocalSlurmCluster, tmp_path: Path) -> None:
    # 2 tasks per node, but trainer=cpu trains on 1 device: without the check, two unrelated copies
    # would train into one run dir (and with devices > tasks, DDP would wait forever)
    start = time.monotonic()
    job = submit(slurm_cluster, tmp_path, "train.sbatch", [*CPU_SBATCH, "--ntasks-per-node=2"], SINGLE)
    assert job.wait(timeout=120) == "FAILED"
    out = job.text()
    message = ("trainer.devices=1 and trainer.num_nodes=1 disagree with Slurm, which started 2 task(s) per node "
               "on 1 node(s); DDP would hang or train unrelated copies. Fix: trainer.devices=2 trainer.num_nodes=1")
    # the first rank to get there says it and exits 2 (no traceback); srun --kill-on-bad-exit then ends the
    # other, which may have said it too, so the job's exit code is 2 or, with the other rank terminated, 143
    assert out.count(message) in (1, 2), out[-3000:]
    assert re.search(r"srun: error: n1: tasks? [0-9-]+: Exited with exit code 2", out), out[-3000:]
    assert "Traceback" not in out and job.field("ExitCode") in ("2:0", "143:0")
    assert not (job.run_dir / "checkpoints").exists()
    assert time.monotonic() - start < 90
