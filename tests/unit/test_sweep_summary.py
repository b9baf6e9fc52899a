"""The sweep summary callback on hand-made Hydra job results (failed, diverged and good trials)."""

from __future__ import annotations

import csv
import json

import pytest
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import RunMode
from omegaconf import OmegaConf

from mlgen.tracking.sweep_summary import SweepSummary, best_trial, sweep_direction


def _job(tmp_path, num: int, value, status=JobStatus.COMPLETED, lr="1e-3") -> JobReturn:
    run_dir = tmp_path / str(num)
    run_dir.mkdir()
    hydra_cfg = OmegaConf.create({"hydra": {"mode": RunMode.MULTIRUN, "job": {"num": num},
                                            "runtime": {"output_dir": str(run_dir)}}})
    job = JobReturn(overrides=[f"model.optimizer.lr={lr}", "trainer.max_epochs=2"], cfg=OmegaConf.create({"objective": "val/loss"}),
                    hydra_cfg=hydra_cfg, status=status)
    job.return_value = value
    return job


def test_summary_skips_failed_and_diverged_trials_and_picks_the_minimum(tmp_path, capsys):
    callback = SweepSummary(direction="minimize")
    jobs = [_job(tmp_path, 0, 0.5, lr="1e-3"), _job(tmp_path, 1, float("nan"), lr="1e-1"),
            _job(tmp_path, 2, RuntimeError("diverged"), status=JobStatus.FAILED, lr="1.0"),
            _job(tmp_path, 3, 0.25, lr="3e-4"), _job(tmp_path, 4, None, lr="1e-2")]
    for job in reversed(jobs):  # finishing order does not matter
        callback.on_job_end(OmegaConf.create(), job)
    callback.on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))

    summary = json.loads((tmp_path / "trials.json").read_text())
    assert [t["number"] for t in summary["trials"]] == [0, 1, 2, 3, 4]
    assert [t["objective"] for t in summary["trials"]] == [0.5, None, None, 0.25, None]
    assert summary["trials"][2]["status"] == "failed" and "diverged" in summary["trials"][2]["error"]
    assert summary["best"]["number"] == 3 and summary["direction"] == "minimize"

    with open(tmp_path / "trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["model.optimizer.lr"] for r in rows] == ["1e-3", "1e-1", "1.0", "3e-4", "1e-2"]
    assert [r["best"] for r in rows] == ["False", "False", "False", "True", "False"]
    assert "trainer.max_epochs" not in rows[0]
    out = capsys.readouterr().out
    assert "Best trial #3: val/loss = 0.25 (minimize)" in out and "4/5 trials completed" in out


def test_single_runs_write_no_trial_file(tmp_path):
    job = _job(tmp_path, 0, 0.5)
    job.hydra_cfg.hydra.mode = RunMode.RUN
    SweepSummary().on_job_end(OmegaConf.create(), job)
    assert not (tmp_path / "0" / "trial.json").exists()


@pytest.mark.parametrize(("config", "given", "expected"), [
    ({"hydra": {"sweeper": {"direction": "minimize"}}, "objective": "val/acc", "model": {"monitor": "val/acc", "monitor_mode": "max"}}, None, "minimize"),
    ({"objective": "val/acc", "model": {"monitor": "val/acc", "monitor_mode": "max"}}, None, "maximize"),
    ({"objective": "val/loss", "model": {"monitor": "val/acc", "monitor_mode": "max"}}, None, None),
    ({"objective": "val/loss", "model": {"monitor": "val/acc", "monitor_mode": "max"}}, "min", "minimize"),
])
def test_direction_comes_from_callback_then_sweeper_then_monitor_mode(config, given, expected):
    assert sweep_direction(OmegaConf.create(config), given) == expected


def test_no_best_without_direction():
    trials = [{"number": 0, "status": "completed", "objective": 1.0}]
    assert best_trial(trials, None) is None
    assert best_trial(trials, "maximize")["number"] == 0
