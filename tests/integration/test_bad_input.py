"""Bad input through the real CLI: non-zero exit, one short paragraph naming the value and the fix,
and no file of an earlier run touched."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config


def _snapshot(folder: Path) -> dict[str, tuple[float, str]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory):
    logs = tmp_path_factory.mktemp("logs")
    out = logs / "train" / "runs" / "earlier"
    train(compose_config("train", [*CPU_QUICK, "trainer.max_epochs=1"], out))
    return logs, out


def _run_cli(args: list[str], cwd: Path, logs: Path, **env_overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLGEN_LOG_DIR": str(logs), "WANDB_MODE": "offline", **env_overrides}
    env.pop("WANDB_API_KEY", None)
    cli = Path(sys.executable).with_name("mlgen-train")
    return subprocess.run([str(cli), "logger=none", "trainer=cpu", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def _corrupt_copy(run: Path, tmp_path: Path) -> Path:
    data = (run / "checkpoints" / "last.ckpt").read_bytes()
    bad = tmp_path / "corrupt.ckpt"
    bad.write_bytes(data[: len(data) // 3])
    return bad


CASES = {
    "unknown option": (lambda run, tmp: ["model.lrr=0.1"], ["model.lrr", "+model.lrr"]),
    "unknown group option": (lambda run, tmp: ["data=imagenet"], ["data/imagenet", "digits"]),
    # the defaults list once made both groups optional, so a misspelt name trained the default silently
    "unknown experiment": (lambda run, tmp: ["experiment=nope"], ["experiment/nope", "digits_vae"]),
    "unknown sweep": (lambda run, tmp: ["hparams_search=nope"], ["hparams_search/nope", "classifier_optuna"]),
    "a GPU trainer without a GPU": (lambda run, tmp: ["trainer.accelerator=gpu"], ["trainer.accelerator=gpu", "trainer=cpu"]),
    "unknown model argument": (lambda run, tmp: ["+model.dropuot=0.5"], ["model.dropuot", "Fix"]),
    "negative learning rate": (lambda run, tmp: ["model.optimizer.lr=-0.01"], ["model.optimizer.lr=-0.01", "positive", "Fix"]),
    "batch size 0": (lambda run, tmp: ["data.batch_size=0"], ["data.batch_size=0", "positive integer", "Fix"]),
    "missing dataset folder": (
        lambda run, tmp: ["data=mnist", f"data.root={tmp / 'no-mnist'}"],
        ["no-mnist", "MNIST/raw/train-images-idx3-ubyte", "data.download=true"],
    ),
    "checkpoint does not exist": (
        lambda run, tmp: [f"ckpt_path={run / 'checkpoints' / 'nope.ckpt'}"],
        ["nope.ckpt", "does not exist", "Fix"],
    ),
    "corrupt checkpoint": (lambda run, tmp: [f"ckpt_path={_corrupt_copy(run, tmp)}"], ["corrupt.ckpt", "not a readable checkpoint", "Fix"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_with_one_clear_paragraph(case, earlier_run, tmp_path):
    logs, run = earlier_run
    before = _snapshot(run)
    make_args, expected = CASES[case]
    proc = _run_cli(make_args(run, tmp_path), tmp_path, logs)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "Traceback" not in output, output
    message = proc.stderr.strip()
    for text in expected:
        assert text in message, message
    prose = [line for line in message.splitlines() if not line.startswith("\t")]  # Hydra's tab-indented option lists
    assert len(prose) <= 15 and len(message) < 1500, message
    assert _snapshot(run) == before  # the earlier run is untouched


def test_wandb_online_without_credentials_says_how_to_log_in(earlier_run, tmp_path):
    logs, run = earlier_run
    before = _snapshot(run)
    proc = _run_cli(["logger=wandb"], tmp_path, logs, WANDB_MODE="online", NETRC=str(tmp_path / "no-netrc"),
                    WANDB_DIR=str(tmp_path), WANDB_CONFIG_DIR=str(tmp_path), WANDB_CACHE_DIR=str(tmp_path))
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    for text in ("WANDB_MODE=online", "wandb login", "WANDB_MODE=offline"):
        assert text in proc.stderr
    assert _snapshot(run) == before
