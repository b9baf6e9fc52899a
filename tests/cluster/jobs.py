"""Submitting mlgen's slurm/ scripts to the local test cluster, and reading back what a job left."""

from __future__ import annotations

import math
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .slurm_cluster import LocalSlurmCluster

REPO = Path(__file__).resolve().parents[2]
# The GPU lines of the scripts overridden for a 2-core CPU node (what a CPU user types too).
CPU_SBATCH = ["--gres=none", "--cpus-per-task=1", "--mem=2G", "--time=10"]
# Quiet, small CPU runs; checkpoints track the latest epoch (monitor=null), so last.ckpt is the final state.
QUIET = ["trainer.enable_progress_bar=false", "callbacks.model_summary=null",
         "callbacks.model_checkpoint.monitor=null"]
# Progress as plain lines when stdout is a file (a Slurm job's output)
LINE_PROGRESS = "callbacks.progress_bar._target_=mlgen.tracking.progress.ProgressForStdout"


def job_env(root: Path) -> dict[str, str]:
    """What a job needs from the submitting shell (sbatch exports it): mlgen-train on PATH, logs and
    offline W&B under `root`, one thread per task on the shared cores."""
    wandb_home = root / "wandb-home"
    return {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLGEN_LOG_DIR": str(root / "logs"),
        "WANDB_MODE": "offline", "WANDB_SILENT": "true",
        **{name: str(wandb_home / name.lower()) for name in
           ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR")},
        "OMP_NUM_THREADS": "1",
    }


@dataclass
class Job:
    """A submitted batch job: its id, the output file of all its attempts, and its run dir."""

    cluster: LocalSlurmCluster
    job_id: str
    output: Path
    log_dir: Path

    @property
    def run_dir(self) -> Path:
        return self.log_dir / "train" / "runs" / f"slurm-{self.job_id}"

    def text(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def wait(self, timeout: float) -> str:
        state = self.cluster.wait(self.job_id, timeout=timeout)
        return state

    def wait_for_file(self, path: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            state = self.cluster.state(self.job_id)
            assert state in ("PENDING", "RUNNING", "CONFIGURING"), f"job {state} before {path}:\n{self.text()[-3000:]}"
            assert time.monotonic() < deadline, f"no {path} after {timeout:.0f} s:\n{self.text()[-3000:]}"
            time.sleep(0.1)

    def field(self, name: str) -> str:
        """A field of `scontrol show job` (e.g. Restarts)."""
        out = self.cluster.run(["scontrol", "-o", "show", "job", self.job_id]).stdout
        return re.search(rf"\b{name}=(\S+)", out).group(1)


def submit(cluster: LocalSlurmCluster, root: Path, script: str, sbatch_args: list[str],
           overrides: list[str]) -> Job:
    """`sbatch [sbatch_args] slurm/<script> [overrides]` from `root`, output into `root`."""
    output = root / "slurm-%j.out"
    job_id = cluster.sbatch([*sbatch_args, f"--output={output}", str(REPO / "slurm" / script), *overrides],
                            cwd=root, env=job_env(root))
    return Job(cluster, job_id, Path(str(output).replace("%j", job_id)), root / "logs")


def steps_per_epoch(run_dir: Path, ranks: int) -> int:
    """Batches per rank and epoch of a run whose training split is shared by `ranks` ranks."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    data = instantiate(OmegaConf.load(run_dir / ".hydra" / "config.yaml").data)
    data.setup("fit")
    return math.ceil(len(data.datasets["train"]) // ranks / data.batch_size)


def csv_rows(run_dir: Path) -> list[dict[str, str]]:
    import csv

    with open(run_dir / "csv" / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def optimizer_steps(ckpt: dict) -> int:
    """Steps the optimizer really took (Adam's own counter, restored and advanced across resumes)."""
    return int(next(iter(ckpt["optimizer_states"][0]["state"].values()))["step"])


def printed_metric(text: str, name: str) -> float:
    """A metric from the result table mlgen-train prints (`│ test/acc │ 0.9611 │`)."""
    match = re.search(rf"{re.escape(name)}\s*│\s*([0-9.eE+-]+)", text)
    assert match, f"{name} not printed:\n{text[-3000:]}"
    return float(match.group(1))
