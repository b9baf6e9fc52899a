"""What mlgen reads from Slurm's variables (no cluster needed): devices and nodes per srun step, the
trainer/tasks check, the W&B run id of a job, and which rank writes Hydra's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlgen import resolvers  # noqa: F401
from mlgen.distributed import run_id, slurm
from mlgen.errors import ConfigError
from tests.helpers.config import compose_config

STEP = {"SLURM_JOB_ID": "77", "SLURM_JOB_NAME": "mlgen-train", "SLURM_STEP_ID": "0",
        "SLURM_STEP_TASKS_PER_NODE": "4(x3)", "SLURM_STEP_NUM_NODES": "3", "SLURM_PROCID": "0"}


def _set(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_ddp_trainers_take_devices_and_nodes_from_the_srun_step(monkeypatch, tmp_path: Path) -> None:
    assert slurm.step_layout() is None
    cfg = compose_config("train", ["trainer=ddp_cpu"], tmp_path)
    assert (cfg.trainer.devices, cfg.trainer.num_nodes) == (2, 1)  # no Slurm: the config's defaults
    _set(monkeypatch, STEP)
    assert slurm.step_layout() == (4, 3)
    for trainer in ("ddp_cpu", "ddp"):
        cfg = compose_config("train", [f"trainer={trainer}"], tmp_path)
        assert (cfg.trainer.devices, cfg.trainer.num_nodes) == (4, 3)
    assert compose_config("train", ["trainer=cpu"], tmp_path).trainer.devices == 1  # single-device stays 1


def test_check_accepts_a_matching_layout_and_names_the_fix_otherwise(monkeypatch) -> None:
    slurm.check_trainer_matches_slurm(8, 1)  # no Slurm: nothing to check
    _set(monkeypatch, STEP)
    slurm.check_trainer_matches_slurm(4, 3)
    with pytest.raises(ConfigError) as err:
        slurm.check_trainer_matches_slurm(2, 3)
    assert str(err.value).startswith(
        "trainer.devices=2 and trainer.num_nodes=3 disagree with Slurm, which started 4 task(s) per node on "
        "3 node(s); DDP would hang or train unrelated copies. Fix: trainer.devices=4 trainer.num_nodes=3")
    monkeypatch.setenv("SLURM_JOB_NAME", "interactive")  # Lightning ignores Slurm there; so do we
    slurm.check_trainer_matches_slurm(2, 3)


def test_ddp_in_the_batch_script_without_srun_is_refused(monkeypatch) -> None:
    _set(monkeypatch, {"SLURM_JOB_ID": "78", "SLURM_JOB_NAME": "train", "SLURM_NTASKS": "2"})
    slurm.check_trainer_matches_slurm(1, 1)  # one process needs no srun
    with pytest.raises(ConfigError, match=r"runs in the batch script of Slurm job 78 without srun, so only one "
                                          r"starts and it would wait for the others forever. Fix: launch it as "
                                          r"`srun mlgen-train \.\.\.`"):
        slurm.check_trainer_matches_slurm(2, 1)


def test_wandb_run_id_is_fixed_per_job_and_run_dir(monkeypatch, tmp_path: Path) -> None:
    assert run_id.wandb_run_id(str(tmp_path)) is None  # outside Slurm W&B picks the id
    _set(monkeypatch, {"SLURM_JOB_ID": "5", "SLURM_CLUSTER_NAME": "c1"})
    first = run_id.wandb_run_id(str(tmp_path / "runs" / "slurm-5"))
    assert first.startswith("c1-5-") and first == run_id.wandb_run_id(str(tmp_path / "runs" / "slurm-5"))
    assert first != run_id.wandb_run_id(str(tmp_path / "elsewhere" / "slurm-5"))  # job ids repeat
    _set(monkeypatch, {"SLURM_ARRAY_JOB_ID": "4", "SLURM_ARRAY_TASK_ID": "3"})
    assert run_id.wandb_run_id(str(tmp_path)).startswith("c1-4_3-")
    cfg = compose_config("train", ["logger=wandb"], tmp_path)
    assert cfg.logger.wandb.id == run_id.wandb_run_id(str(tmp_path)) and cfg.logger.wandb.resume == "allow"


@pytest.mark.parametrize("variable", ["SLURM_PROCID", "RANK", "LOCAL_RANK", "NODE_RANK"])
def test_only_rank_zero_writes_hydra_files(monkeypatch, tmp_path: Path, variable: str) -> None:
    hydra = compose_config("train", [], tmp_path).hydra
    assert hydra.output_subdir == ".hydra" and list(hydra.job_logging.root.handlers) == ["console", "file"]
    monkeypatch.setenv(variable, "1")
    hydra = compose_config("train", [], tmp_path).hydra
    assert hydra.output_subdir is None and list(hydra.job_logging.root.handlers) == ["console"]
