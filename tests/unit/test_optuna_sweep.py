"""mlgen's Optuna sweep loop, piece by piece, on real sqlite studies (the CLI tests run it whole)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from mlgen.compat import optuna_trial_id
from mlgen.tracking.optuna_sweep import build_storage, consecutive_runs, heartbeats, trials_to_go

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def _study(tmp_path) -> tuple[optuna.Study, optuna.storages.RDBStorage]:
    """Heartbeats every second; a trial without one for a second is stale."""
    storage = build_storage(f"sqlite:///{tmp_path}/sweeps/optuna.db", 1, 1)  # also makes the folder
    return optuna.create_study(study_name="s", storage=storage), storage


def test_total_counts_finished_and_live_trials_and_fails_stale_ones(tmp_path):
    study, storage = _study(tmp_path)
    done, pruned, failed = study.ask(), study.ask(), study.ask()
    study.tell(done, 1.0)
    study.tell(pruned, state=TrialState.PRUNED)
    study.tell(failed, state=TrialState.FAIL)  # a failed trial is run again: it does not count
    assert trials_to_go(study, 4) == 2

    live, killed = study.ask(), study.ask()
    with heartbeats(storage, [live], interval=1):  # a worker running `live`; `killed`'s worker is gone
        storage.record_heartbeat(optuna_trial_id(killed))
        assert trials_to_go(study, 4) == 0  # both still count within the grace period
        time.sleep(2.5)
        assert trials_to_go(study, 4) == 1  # `killed` went stale and was failed; `live` kept beating
    states = {t.number: t.state for t in study.trials}
    assert states[live.number] == TrialState.RUNNING and states[killed.number] == TrialState.FAIL
    assert trials_to_go(study, 2) == 0  # never negative


def test_trials_are_launched_in_runs_of_consecutive_numbers(tmp_path):
    study, _ = _study(tmp_path)
    trials = [study.ask() for _ in range(6)]
    mine = [trials[0], trials[1], trials[3], trials[4], trials[5]]  # another worker took number 2
    assert [[t.number for t in run] for run in consecutive_runs(mine)] == [[0, 1], [3, 4, 5]]


def test_storage_urls_and_a_study_in_memory():
    assert build_storage("redis://host/0", 60, None) == "redis://host/0"  # Optuna opens it; no heartbeats there
    assert build_storage(None, 60, None) is None  # hydra.sweeper.storage=null: in memory, lost with the process
    study = optuna.create_study(storage=None)
    trial = study.ask()
    with heartbeats(None, [trial], interval=1):  # nothing to record
        assert trials_to_go(study, 3) == 2


PLUGIN = Path(__file__).resolve().parents[2] / "mlgen" / "tracking" / "sweeper_plugin"
DISCOVER = ("from hydra.core.plugins import Plugins; from hydra.plugins.sweeper import Sweeper; "
            "print(sorted(f'{p.__module__}.{p.__name__}' for p in Plugins.instance().discover(Sweeper)))")


def test_hydras_plugin_scan_finds_the_sweeper_where_a_wheel_installs_it(tmp_path):
    """A wheel puts hydra_plugins/mlgen_sweeper on a plain path, which Hydra's scan walks and executes (an
    editable install is only reached through mlgen.cli's register())."""
    shutil.copytree(PLUGIN, tmp_path / "hydra_plugins" / "mlgen_sweeper")
    proc = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r}); {DISCOVER}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "hydra_plugins.mlgen_sweeper.ResumableOptunaSweeper" in proc.stdout
    assert "Error importing" not in proc.stderr


def test_without_the_sweep_extra_the_plugin_defines_nothing_and_hydra_starts_quietly():
    hide = "import sys; sys.modules['hydra_plugins.hydra_optuna_sweeper.config'] = None"  # as if not installed
    proc = subprocess.run([sys.executable, "-c", f"{hide}; import hydra_plugins.mlgen_sweeper as m; m.register(); "
                           "print(hasattr(m, 'ResumableOptunaSweeper'))"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.split() == ["False"], proc.stderr


@pytest.mark.slow
def test_workers_opening_a_new_database_at_the_same_moment_all_get_the_storage(tmp_path):
    """Slurm array tasks start together on a new sweep database: each one creates its schema, and without the
    retry all but the first can fail on the schema's version row (seen in CI; 1 of these 4 processes failed
    with `STORAGE_ATTEMPTS = 1`). Four processes, released together, must all open it and see one study."""
    url = f"sqlite:///{tmp_path}/optuna.db"
    start = time.time() + 4  # every process waits until then, so their schema creation overlaps
    code = ("import sys, time; from mlgen.tracking.optuna_sweep import build_storage; import optuna; "
            f"time.sleep(max(0.0, {start} - time.time())); storage = build_storage({url!r}, 60, None); "
            "optuna.create_study(study_name='s', storage=storage, load_if_exists=True); print('ok')")
    workers = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(4)]
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    assert [w.returncode for w in workers] == [0] * 4, "\n".join(o[-1500:] for o in outputs)
    assert len(optuna.get_all_study_summaries(build_storage(url, 60, None))) == 1
