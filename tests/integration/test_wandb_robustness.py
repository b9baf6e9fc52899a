"""W&B never stands in the way: no credentials or network, DDP, logger=none, a missing or broken wandb."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config
from tests.helpers.wandb_runs import offline_run_dirs, read_offline_run

QUICK = ["trainer.enable_progress_bar=false", "callbacks.model_summary=null", "trainer.max_epochs=2"]

# Shadows the installed wandb (PYTHONPATH comes before site-packages): importing it fails midway,
# as a half-upgraded or incompatible install does.
BROKEN_WANDB = "raise ImportError('simulated broken wandb install: undefined symbol in wandb-core')\n"
# Hides wandb from the import system while its metadata stays installed, as after a partial uninstall.
MISSING_WANDB = """import importlib.abc, sys
class _NoWandb(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "wandb" or name.startswith("wandb."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _NoWandb())
"""


def _no_credentials_env(tmp_path: Path) -> dict[str, str]:
    """No API key, no netrc, no WANDB_MODE, and every network address a dead local port."""
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_MODE", "WANDB_API_KEY")}
    dead = "http://127.0.0.1:9"
    env.update(HOME=str(tmp_path / "home"), NETRC=str(tmp_path / "home" / "no-netrc"), WANDB_BASE_URL=dead,
               HTTP_PROXY=dead, HTTPS_PROXY=dead, http_proxy=dead, https_proxy=dead, NO_PROXY="", no_proxy="",
               MLGEN_LOG_DIR=str(tmp_path / "logs"))
    (tmp_path / "home").mkdir()
    return env


def _train_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(Path(sys.executable).with_name("mlgen-train")), *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_ddp_run_without_credentials_or_network_goes_offline_and_makes_one_wandb_run(tmp_path):
    """`timeout` fails the test if W&B waited for a login prompt or a connection."""
    proc = _train_cli(["trainer=ddp_cpu", "logger=wandb", *QUICK], _no_credentials_env(tmp_path), tmp_path, timeout=240)
    assert "W&B is offline" in proc.stdout + proc.stderr

    (run_dir,) = (tmp_path / "logs" / "train" / "runs").iterdir()  # DDP made no second output dir
    runs = offline_run_dirs(tmp_path)
    assert runs == offline_run_dirs(run_dir / "wandb") and len(runs) == 1
    run = read_offline_run(runs[0])
    assert run.exit_code == 0
    assert (run.config["trainer"]["strategy"], run.config["trainer"]["devices"]) == ("ddp", 2)
    assert [row["epoch"] for row in run.rows_with("val/acc")] == [0, 1]
    assert 0.5 < run.summary["test/acc"] <= 1


def test_logger_none_trains_without_any_logger_files(tmp_path):
    out = tmp_path / "run"
    result = train(compose_config("train", [*CPU_QUICK, *QUICK, "logger=none"], out))
    assert result.metrics["test/acc"] > 0.5
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert not any((out / name).exists() for name in ("wandb", "csv", "tensorboard"))


@pytest.mark.slow
@pytest.mark.parametrize("install", ["broken", "missing"])
def test_training_goes_on_when_wandb_cannot_be_imported(tmp_path, install):
    shim = tmp_path / "shim"
    if install == "broken":
        (shim / "wandb").mkdir(parents=True)
        (shim / "wandb" / "__init__.py").write_text(BROKEN_WANDB)
    else:
        shim.mkdir()
        (shim / "sitecustomize.py").write_text(MISSING_WANDB)
    env = {**os.environ, "PYTHONPATH": str(shim), "MLGEN_LOG_DIR": str(tmp_path / "logs")}
    probe = subprocess.run([sys.executable, "-c", "import wandb"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0  # the shim does make wandb unusable

    proc = _train_cli(["trainer=cpu", "logger=[csv,wandb]", *QUICK], env, tmp_path)
    output = proc.stdout + proc.stderr
    assert "W&B logger skipped: wandb cannot be imported" in output
    (run_dir,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert "test/acc" in (run_dir / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert not (run_dir / "wandb").exists()
