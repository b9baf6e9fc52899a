"""`mlgen-eval ckpt_path=...` through the real CLI needs no other config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mlgen.errors import ConfigError
from mlgen.tasks.evaluate import evaluate
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


def test_eval_on_the_validation_split_scores_what_training_validated_and_never_the_test_split(tmp_path):
    """`split=val` (for choosing sampling options without the test split) scores the checkpoint on the same
    validation images training scored it on; any other split is refused, naming the choices."""
    trained = train(compose_config("train", [*CPU_QUICK, "trainer.max_epochs=2", "test=false"], tmp_path / "run"))
    last = Path(trained.best_checkpoint).with_name("last.ckpt")
    logged = pd.read_csv(trained.output_dir / "csv" / "metrics.csv")
    val_acc_at_last_epoch = logged["val/acc"].dropna().iloc[-1]

    scored = evaluate(compose_config("eval", ["trainer=cpu", "logger=csv", f"ckpt_path={last}", "split=val"], tmp_path / "val"))
    assert not any(name.startswith("test/") for name in scored.metrics), scored.metrics
    assert abs(scored.metrics["val/acc"] - val_acc_at_last_epoch) < 1e-6

    with pytest.raises(ConfigError, match=r"split='train' is invalid: .*Fix: split=val .* split=test"):
        evaluate(compose_config("eval", ["trainer=cpu", "logger=csv", f"ckpt_path={last}", "split=train"], tmp_path / "bad"))
