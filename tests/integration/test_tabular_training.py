"""Tables through the normal `mlgen-train` path: `data=breast_cancer` composes with D computed from the
fitted table, the MLP classifier learns it, the fitted transform travels in the checkpoint and a resume
accepts it; `data=csv` on a user's file; bad tables through the real CLI exit 2 with one paragraph."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from mlgen.data.tabular import TabularDataModule
from mlgen.data.tabular_transform import TableTransform
from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config

QUICK_MLP = [*CPU_QUICK, "model.net.hidden=[64]", "model.optimizer.lr=3e-3"]


@pytest.mark.slow
def test_mlp_classifier_learns_breast_cancer_and_its_checkpoint_decodes_rows(tmp_path):
    cfg = compose_config("train", [*QUICK_MLP, "data=breast_cancer", "trainer.max_epochs=6"], tmp_path / "run")
    width = cfg.data.shape[0]  # resolved from the fitted table before any datamodule is built by the task
    assert cfg.model.shape == [width] and cfg.model.num_classes == 2 and width > 30
    result = train(cfg)
    assert result.metrics["test/acc"] >= 0.92, result.metrics  # a linear model gets ~0.95; chance 0.63
    assert result.metrics["test/loss"] < 0.3, result.metrics

    checkpoint = torch.load(result.output_dir / "checkpoints" / "last.ckpt", weights_only=True)
    transform = TableTransform.from_state(checkpoint[TabularDataModule.__qualname__]["transform"])
    assert transform.width == width
    data = TabularDataModule(dataset="breast_cancer")
    data.setup("test")
    x, y = data.datasets["test"].tensors
    decoded = transform.decode(x, y)
    test_rows = data.table.test
    assert list(decoded.columns) == list(test_rows.columns) and (decoded["diagnosis"] == test_rows["diagnosis"]).all()
    np.testing.assert_allclose(decoded["mean area"], test_rows["mean area"], rtol=1e-5)

    resumed = compose_config("train", [*QUICK_MLP, "data=breast_cancer", "trainer.max_epochs=7", "test=false",
                                       f"ckpt_path={result.output_dir / 'checkpoints' / 'last.ckpt'}"], tmp_path / "resumed")
    assert train(resumed).metrics  # the datamodule accepted the checkpoint's transform


def _user_table(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    plan = rng.choice(["basic", "plus", "pro"], n)
    usage = rng.gamma(2.0, 10.0, n).round(1)
    churned = np.where((plan == "basic") & (usage < 20), "yes", "no")
    return pd.DataFrame({"plan": plan, "usage": usage, "tickets": rng.poisson(2, n), "churned": churned})


def test_csv_config_reads_a_users_table(tmp_path):
    path = tmp_path / "customers.parquet"
    _user_table().to_parquet(path, index=False)
    cfg = compose_config("train", [*QUICK_MLP, "data=csv", f"data.path={path}", "data.target=churned",
                                   "+data.columns.tickets=categorical", "data.continuous=quantile", "data.batch_size=32",
                                   "trainer.max_epochs=30"],
                         tmp_path / "run")
    data = TabularDataModule(**{k: v for k, v in cfg.data.items() if not k.startswith("_")})
    assert cfg.data.shape == [data.shape[0]] and cfg.data.num_classes == 2
    assert next(s for s in data.layout if s.column == "tickets").kind == "category"
    result = train(cfg)
    assert result.metrics["test/acc"] >= 0.9, result.metrics  # the rule is plan and usage; majority class ~0.75


def _run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLGEN_LOG_DIR": str(cwd / "logs"), "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    cli = Path(sys.executable).with_name("mlgen-train")
    return subprocess.run([str(cli), "logger=none", "trainer=cpu", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=180, stdin=subprocess.DEVNULL)


# a DataError and a ConfigError (every bad-table case is in tests/unit/test_tabular_bad_tables.py)
CLI_CASES = {
    "missing file": (lambda d: d / "nope.csv", "churned", ["data.path=", "nope.csv", "no such file", "Fix"]),
    "unknown target": (lambda d: _user_table(60).to_csv(d / "t.csv", index=False) or d / "t.csv", "churn",
                       ["data.target='churn' is invalid", "'churned'", "Fix"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CLI_CASES))
def test_bad_table_through_the_cli_exits_2_with_one_paragraph_and_no_checkpoint(case, tmp_path):
    make, target, expected = CLI_CASES[case]
    proc = _run_cli(["data=csv", f"data.path={make(tmp_path)}", f"data.target={target}"], tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output, output
    message = proc.stderr.strip()
    for text in expected:
        assert text in message, message
    assert not list((tmp_path / "logs").rglob("*.ckpt"))


@pytest.mark.slow
def test_printing_the_resolved_config_shows_the_tables_width_and_classes(tmp_path):
    """README: `mlgen-train data=csv data.path=t.csv data.target=y --cfg job --resolve` shows the inferred width D
    and classes. With the default W&B logger it once crashed resolving the W&B run id: Hydra makes no run dir
    for `--cfg`."""
    _user_table(60).to_csv(tmp_path / "t.csv", index=False)
    env = {**os.environ, "MLGEN_LOG_DIR": str(tmp_path / "logs"), "WANDB_MODE": "disabled"}
    cli = Path(sys.executable).with_name("mlgen-train")
    proc = subprocess.run([str(cli), "data=csv", f"data.path={tmp_path / 't.csv'}", "data.target=churned", "--cfg", "job",
                           "--resolve"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    data = yaml.safe_load(proc.stdout)["data"]
    assert data["num_classes"] == 2 and data["shape"][0] > 3 and data["path"] == str(tmp_path / "t.csv")
    assert yaml.safe_load(proc.stdout)["logger"]["wandb"]["id"] is None  # W&B picks the id when the run starts
    assert not (tmp_path / "logs").exists()  # nothing written
