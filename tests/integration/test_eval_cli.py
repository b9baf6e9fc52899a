"""`mlgen-eval ckpt_path=...` through the real CLI needs no other config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config


def test_eval_cli_tests_a_checkpoint_with_no_other_config(tmp_path):
    trained = train(compose_config("train", [*CPU_QUICK, "trainer.max_epochs=2"], tmp_path / "run"))
    cli = Path(sys.executable).with_name("mlgen-eval")
    env = {**os.environ, "MLGEN_LOG_DIR": str(tmp_path / "logs")}
    proc = subprocess.run([str(cli), f"ckpt_path={trained.best_checkpoint}", "trainer.enable_progress_bar=false"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test/acc" in proc.stdout
    shown = next(line for line in proc.stdout.splitlines() if "test/acc" in line)
    assert abs(float(shown.split()[-2]) - trained.metrics["test/acc"]) < 1e-3
    (eval_run,) = (tmp_path / "logs" / "eval" / "runs").iterdir()
    assert (eval_run / ".hydra" / "config.yaml").is_file() and (eval_run / "csv" / "metrics.csv").is_file()
