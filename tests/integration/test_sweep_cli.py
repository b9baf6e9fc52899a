"""Hydra multirun sweeps through the real `mlgen-train` CLI: Optuna (TPE) and the basic grid sweeper;
an Optuna sweep killed mid-trial and continued; Optuna pruning of a trial that cannot learn."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from mlgen.cli import plot
from tests.helpers.wandb_runs import offline_run_dirs, read_offline_run

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # enqueue_trial

QUICK = ["trainer=cpu", "trainer.enable_progress_bar=false", "callbacks.model_summary=null"]
MLGEN_TRAIN = str(Path(sys.executable).with_name("mlgen-train"))


def _env(log_dir: Path) -> dict[str, str]:
    return {**os.environ, "MLGEN_LOG_DIR": str(log_dir), "OMP_NUM_THREADS": "1"}


def _train(args: list[str], log_dir: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([MLGEN_TRAIN, *args], env=_env(log_dir), capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _run(args: list[str], log_dir: Path) -> tuple[Path, str]:
    stdout = _train(args, log_dir).stdout
    (sweep_dir,) = (log_dir / "train" / "multiruns").iterdir()
    return sweep_dir, stdout


def _study(sweep_dir: Path, name: str = "classifier") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{sweep_dir}/optuna.db")


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


# 4 trials of one epoch on digits; heartbeats every second, so a killed worker's trial is stale after 2 s
RESUMABLE = ["hparams_search=classifier_optuna", "hydra.sweeper.n_trials=4", "hydra.sweeper.heartbeat_interval=1",
             "hydra.sweeper.grace_period=2", *QUICK, "trainer.max_epochs=1", "logger=csv"]


@pytest.mark.slow
def test_a_sweep_killed_after_two_trials_continues_to_four_trials_in_one_study(tmp_path):
    sweep_dir = tmp_path / "sweep"
    command = [MLGEN_TRAIN, *RESUMABLE, f"hydra.sweep.dir={sweep_dir}"]
    first = subprocess.Popen(command, env=_env(tmp_path / "logs"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (sweep_dir / "2").exists():  # trials 0 and 1 are told; trial 2 has started
        assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()[-3000:]
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # no clean-up at all, as on a lost node
    first.wait()
    before = _study(sweep_dir)
    assert [t.state.name for t in before.trials] == ["COMPLETE", "COMPLETE", "RUNNING"]
    first_trial = (sweep_dir / "0" / "trial.json").read_text()

    time.sleep(3)  # past the grace period: the killed trial is known to be stale
    proc = _train(command[1:], tmp_path / "logs")
    assert "2 of 4 trials done" in proc.stdout + proc.stderr

    # one study: the 2 trials of the first launch, the killed one failed, 2 new ones; 4 complete, not 6
    study = _study(sweep_dir)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert len({t.params["model.optimizer.lr"] for t in study.trials}) == 5  # the continued sampler draws anew
    summary = json.loads((sweep_dir / "trials.json").read_text())
    assert [(t["number"], t["status"]) for t in summary["trials"]] == [(n, "completed") for n in (0, 1, 3, 4)]
    for t in summary["trials"]:  # each run dir is its trial's: numbered like the study, none overwritten
        assert t["run_dir"] == str(sweep_dir / str(t["number"]))
        assert t["objective"] == pytest.approx(study.trials[t["number"]].value, abs=1e-7)
    assert (sweep_dir / "0" / "trial.json").read_text() == first_trial
    assert not (sweep_dir / "2" / "trial.json").exists()
    assert summary["best"]["objective"] == pytest.approx(study.best_value, abs=1e-7)

    # a finished sweep run again runs nothing; a raised n_trials extends it
    again = _train(command[1:], tmp_path / "logs")
    assert "4 of 4 trials done" in again.stdout + again.stderr
    assert len(_study(sweep_dir).trials) == 5

    # the sweep plots: objective per trial, best so far, and each swept value against the objective
    plot([str(sweep_dir)])
    assert {p.name for p in (sweep_dir / "plots").iterdir()} >= {
        "objective.png", "model.optimizer.lr.png", "model.optimizer.weight_decay.png", "model.net.dropout.png",
        "data.batch_size.png"}


@pytest.mark.slow
def test_ctrl_c_fails_the_running_trial_at_once_so_the_sweep_continues_without_waiting(tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = ["hparams_search=classifier_optuna", "hydra.sweeper.n_trials=2", *QUICK, "trainer.max_epochs=3", "logger=csv",
            f"hydra.sweep.dir={sweep_dir}"]
    first = subprocess.Popen([MLGEN_TRAIN, *args], env=_env(tmp_path / "logs"), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (sweep_dir / "1").exists():
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGINT)  # Ctrl-C in the terminal
    output = first.communicate(timeout=120)[0]
    assert first.returncode != 0
    assert "Sweep stopped: trial(s) 1 marked failed" in output
    assert [t.state.name for t in _study(sweep_dir).trials] == ["COMPLETE", "FAIL"]

    proc = _train(args, tmp_path / "logs")  # at once: no stale trial to wait for
    assert "1 of 2 trials done" in proc.stdout + proc.stderr
    assert [t.state.name for t in _study(sweep_dir).trials] == ["COMPLETE", "FAIL", "COMPLETE"]


@pytest.mark.slow
def test_two_workers_feed_one_study_to_its_total(tmp_path):
    """What several Slurm jobs or array tasks do: the same command with the same sweep dir, at the same time."""
    sweep_dir = tmp_path / "sweep"
    command = [MLGEN_TRAIN, "hparams_search=classifier_optuna", "hydra.sweeper.n_trials=3", *QUICK, "trainer.max_epochs=1",
               "logger=csv", f"hydra.sweep.dir={sweep_dir}"]
    workers = [subprocess.Popen(command, env=_env(tmp_path / "logs"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, stdin=subprocess.DEVNULL) for _ in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]

    trials = _study(sweep_dir).trials
    complete = [t.number for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 3  # the total, not 3 per worker
    assert all("mlgen_skipped" in t.user_attrs for t in trials if t.state.name != "COMPLETE")  # asked in a race, not run
    summary = json.loads((sweep_dir / "trials.json").read_text())  # the summary of whichever worker ended last
    assert [t["number"] for t in summary["trials"]] == complete
    assert sorted(p.name for p in sweep_dir.iterdir() if p.name.isdigit()) == sorted(map(str, complete))
    print("trials launched per worker:", [o.count("Launching 1 jobs locally") for o in outputs])


def test_continuing_a_sweep_with_other_settings_is_refused(tmp_path):
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    study = optuna.create_study(study_name="classifier", storage=f"sqlite:///{sweep_dir}/optuna.db", direction="maximize")
    study.set_user_attr("mlgen_task_overrides", sorted(["hparams_search=classifier_optuna", "trainer.max_epochs=5"]))
    proc = subprocess.run([MLGEN_TRAIN, "hparams_search=classifier_optuna", "trainer.max_epochs=1", *QUICK,
                           f"hydra.sweep.dir={sweep_dir}"], env=_env(tmp_path / "logs"), capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "started with the overrides hparams_search=classifier_optuna trainer.max_epochs=5" in proc.stderr
    assert "Fix: continue it with the same overrides" in proc.stderr
    assert _study(sweep_dir).trials == []


@pytest.mark.slow
def test_pruning_stops_a_trial_that_cannot_learn_and_records_it_as_pruned(tmp_path):
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    # Optuna runs enqueued settings first: a learning rate that learns, then one that cannot (1e-9)
    study = optuna.create_study(study_name="classifier", storage=f"sqlite:///{sweep_dir}/optuna.db", direction="maximize")
    fixed = {"model.optimizer.weight_decay": 1e-4, "model.net.dropout": 0.0, "data.batch_size": 32}
    study.enqueue_trial({"model.optimizer.lr": 1e-2, **fixed})
    study.enqueue_trial({"model.optimizer.lr": 1e-9, **fixed})
    stdout = _train(["hparams_search=classifier_optuna_pruned", "hydra.sweeper.n_trials=2",
                      "model.optimizer.lr=tag(log, interval(1e-9, 1e-1))",
                      # the median pruner as configured, allowed to judge from the first trial and epoch on
                      "callbacks.optuna_pruning.pruner.n_startup_trials=1", "callbacks.optuna_pruning.pruner.n_warmup_steps=0",
                      *QUICK, "trainer.max_epochs=3", "logger=csv", f"hydra.sweep.dir={sweep_dir}"], tmp_path / "logs").stdout

    good, bad = _study(sweep_dir).trials
    assert good.state.name == "COMPLETE" and sorted(good.intermediate_values) == [0, 1, 2]
    assert bad.state.name == "PRUNED" and sorted(bad.intermediate_values) == [0]  # stopped after epoch 0 of 3
    assert bad.intermediate_values[0] < 0.3 < good.intermediate_values[0]  # chance level vs learning

    with open(sweep_dir / "1" / "csv" / "metrics.csv") as handle:  # the pruned run logged one validation epoch
        assert [row["epoch"] for row in csv.DictReader(handle) if row.get("val/acc")] == ["0"]
    summary = json.loads((sweep_dir / "trials.json").read_text())
    assert [t["status"] for t in summary["trials"]] == ["completed", "pruned"]
    assert summary["trials"][1]["objective"] == pytest.approx(bad.intermediate_values[0], abs=1e-7)  # last reported
    assert "pruned at epoch 0" in summary["trials"][1]["reason"]
    assert summary["best"]["number"] == 0
    assert "1/2 trials completed, 1 pruned" in stdout
