"""Hydra multirun sweeps through the real `mlgen-train` CLI: Optuna (TPE) and the basic grid sweeper."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers.wandb_runs import offline_run_dirs, read_offline_run

QUICK = ["trainer=cpu", "trainer.enable_progress_bar=false", "callbacks.model_summary=null"]


def _run(args: list[str], log_dir: Path) -> tuple[Path, str]:
    env = {**os.environ, "MLGEN_LOG_DIR": str(log_dir)}
    proc = subprocess.run([str(Path(sys.executable).with_name("mlgen-train")), *args], env=env, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (sweep_dir,) = (log_dir / "train" / "multiruns").iterdir()
    return sweep_dir, proc.stdout


def _max_logged(run_dir: Path, metric: str, pick=max) -> float:
    with open(run_dir / "csv" / "metrics.csv") as handle:
        return pick(float(row[metric]) for row in csv.DictReader(handle) if row.get(metric))


@pytest.mark.slow
def test_optuna_sweep_writes_summary_whose_best_is_the_best_trial(tmp_path):
    sweep_dir, stdout = _run(["-m", "hparams_search=classifier_optuna", "hydra.sweeper.n_trials=4", *QUICK,
                              "trainer.max_epochs=2", "logger=[csv,wandb]"], tmp_path / "logs")
    summary = json.loads((sweep_dir / "trials.json").read_text())
    trials = summary["trials"]
    assert [t["number"] for t in trials] == [0, 1, 2, 3]
    assert all(t["status"] == "completed" and t["objective_name"] == "val/acc" for t in trials)
    assert summary["direction"] == "maximize"

    # every trial's objective is the best val/acc its own run logged
    for t in trials:
        assert t["objective"] == pytest.approx(_max_logged(Path(t["run_dir"]), "val/acc"), abs=1e-7)
    best = summary["best"]
    assert best["objective"] == max(t["objective"] for t in trials)
    assert len({t["objective"] for t in trials}) > 1  # the sampled settings did differ in outcome

    # Optuna's own record of the study agrees with the summary
    optuna_result = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert optuna_result["best_value"] == pytest.approx(best["objective"], abs=1e-9)
    for key, value in optuna_result["best_params"].items():
        assert f"{key}={value}" in best["overrides"]
    assert f"Best trial #{best['number']}: val/acc = {best['objective']:.6g} (maximize)" in stdout

    with open(sweep_dir / "trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["best"] for r in rows].count("True") == 1
    assert rows[best["number"]]["best"] == "True"
    assert {"model.optimizer.lr", "model.net.dropout", "data.batch_size"} <= set(rows[0])
    assert "trainer.max_epochs" not in rows[0]  # fixed overrides are not columns

    # one W&B run per trial, typed as a sweep, holding that trial's sampled config
    assert all(len(offline_run_dirs(Path(t["run_dir"]) / "wandb")) == 1 for t in trials)
    run = read_offline_run(offline_run_dirs(Path(best["run_dir"]) / "wandb")[0])
    assert run.run["job_type"] == "sweep"
    lr = next(o.split("=", 1)[1] for o in best["overrides"] if o.startswith("model.optimizer.lr="))
    assert run.config["model"]["optimizer"]["lr"] == pytest.approx(float(lr))


@pytest.mark.slow
def test_grid_sweep_minimising_the_monitored_loss(tmp_path):
    sweep_dir, stdout = _run(["hparams_search=classifier_grid", "model.net.dropout=0.1",  # a fixed value replaces that swept key
                              "objective=val/loss", "model.monitor=val/loss", "model.monitor_mode=min",
                              *QUICK, "trainer.max_epochs=1", "logger=csv"], tmp_path / "logs")
    summary = json.loads((sweep_dir / "trials.json").read_text())
    assert summary["direction"] == "minimize"  # from model.monitor_mode: the basic sweeper has none
    lrs = [next(o for o in t["overrides"] if o.startswith("model.optimizer.lr=")) for t in summary["trials"]]
    assert lrs == ["model.optimizer.lr=0.0003", "model.optimizer.lr=0.001", "model.optimizer.lr=0.003"]
    for t in summary["trials"]:
        assert t["objective"] == pytest.approx(_max_logged(Path(t["run_dir"]), "val/loss", pick=min), abs=1e-7)
    assert summary["best"]["objective"] == min(t["objective"] for t in summary["trials"])
    assert f"Best trial #{summary['best']['number']}: val/loss" in stdout
