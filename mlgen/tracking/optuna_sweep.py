"""The loop of mlgen's Optuna sweeper (`hydra/sweeper=mlgen_optuna`, class in hydra_plugins/mlgen_sweeper).

Written by hand because hydra-optuna-sweeper's own loop (1.3.0, the newest release) does three things a
sweep that must survive a stop cannot have: it runs `n_trials` new trials at every launch (a continued sweep
would overshoot), numbers its jobs from 0 at every launch (a continued sweep would overwrite the first trials'
run dirs), and tells Optuna that a pruned trial failed (which stops the sweep). Everything else is theirs or
Optuna's: the config and search-space parsing and the sampler (hydra-optuna-sweeper), the storage, ask/tell,
heartbeats of running trials and the failing of stale ones (Optuna).

Semantics:
- `n_trials` is the study's total: trials that finished (complete or pruned) plus trials that live workers
  are running count towards it; each launch runs only what is missing. Raising `n_trials` extends a sweep.
- A trial's job number, and so its run dir `<sweep dir>/<n>`, is its Optuna trial number, unique in the study.
- A trial whose job raises `optuna.TrialPruned` (mlgen.tracking.pruning) is told PRUNED, not failed.
- A worker stopped by Ctrl-C or an exception fails its running trials at once; one killed outright leaves them
  running until their heartbeat is `grace_period` old, when the next worker to look fails them.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.trial import TrialState
from sqlalchemy.exc import SQLAlchemyError

from mlgen.compat import failed_job_error, optuna_search_space, optuna_trial_id
from mlgen.errors import ConfigError

log = logging.getLogger(__name__)

# the trials that count towards n_trials (those in RUNNING are live: stale ones are failed first)
COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
# study attribute holding the command-line overrides the sweep was started with
OVERRIDES_ATTR = "mlgen_task_overrides"


def trials_to_go(study: optuna.Study, n_trials: int) -> int:
    """How many trials are missing from a study of `n_trials` (after failing the stale running ones)."""
    with warnings.catch_warnings():  # experimental since optuna 2.9, and the way Optuna itself does it
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return max(0, n_trials - len(study.get_trials(deepcopy=False, states=COUNTED_STATES)))


STORAGE_ATTEMPTS = 5


def build_storage(url: Any, heartbeat_interval: int, grace_period: int | None) -> Any:
    """A database URL becomes an RDBStorage with heartbeats; None (in memory) and anything else pass through.
    sqlite waits up to a minute for a lock: several workers on a shared filesystem write to one file."""
    if not isinstance(url, str) or url.startswith("redis"):
        return url
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)

    def build() -> optuna.storages.RDBStorage:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
                                          grace_period=grace_period)

    # Written by hand (Optuna doesn't guard it): workers started together on a new database (Slurm array tasks)
    # each create its schema, and all but the first can fail on the schema's version row (IntegrityError, seen
    # in tests/integration/test_sweep_cli.py). The schema exists by then, so building the storage again succeeds.
    for attempt in range(1, STORAGE_ATTEMPTS):
        try:
            return build()
        except SQLAlchemyError:
            time.sleep(attempt)
    return build()  # the last attempt raises what it meets


def directions(direction: Any) -> list[str]:
    items = direction if isinstance(direction, Sequence) and not isinstance(direction, str) else [direction]
    return [d.name if isinstance(d, Enum) else str(d) for d in items]


def consecutive_runs(trials: list[optuna.trial.Trial]) -> Iterator[list[optuna.trial.Trial]]:
    """Trials grouped into runs of consecutive numbers: a launcher numbers a batch of jobs consecutively,
    and other workers may have taken numbers in between."""
    run: list[optuna.trial.Trial] = []
    for trial in trials:
        if run and trial.number != run[-1].number + 1:
            yield run
            run = []
        run.append(trial)
    if run:
        yield run


@contextmanager
def heartbeats(storage: Any, trials: list[optuna.trial.Trial], interval: int) -> Iterator[None]:
    """Record a heartbeat of each trial every `interval` seconds while its jobs run (Optuna does the same
    inside `Study.optimize`, which a sweeper that launches jobs cannot use)."""
    if not isinstance(storage, optuna.storages.RDBStorage):
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            for trial in trials:
                storage.record_heartbeat(optuna_trial_id(trial))
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name="optuna-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class ResumableSweep:
    """One launch of a sweep. `impl` is hydra-optuna-sweeper's OptunaSweeperImpl after `setup` (its config,
    launcher, sampler and options)."""

    def __init__(self, impl: Any, heartbeat_interval: int, grace_period: int | None) -> None:
        self.impl = impl
        self.heartbeat_interval = heartbeat_interval
        self.storage = build_storage(impl.storage, heartbeat_interval, grace_period)
        self.sweep_dir = Path(str(impl.config.hydra.sweep.dir))

    def run(self, arguments: list[str]) -> None:
        space, fixed = self.search_space(arguments)
        study = optuna.create_study(study_name=self.impl.study_name, storage=self.storage, sampler=self.impl.sampler,
                                    directions=directions(self.impl.direction), load_if_exists=True)
        self.check_same_sweep(study)
        self.announce(study)
        if study.get_trials(deepcopy=False):  # a configured seed would repeat the draws of the study's first launch
            self.impl.sampler.reseed_rng()
        while (batch := min(self.impl.n_jobs, trials_to_go(study, self.impl.n_trials))) > 0:
            trials = self.within_total(study, [study.ask(space) for _ in range(batch)])
            if not trials:
                break
            for trial in trials:
                for name, value in fixed.items():
                    trial.set_user_attr(name, value)
                if self.impl.custom_search_space_extender:
                    self.impl.custom_search_space_extender(self.impl.config, trial)
            with self.fail_if_stopped(study, trials), heartbeats(self.storage, trials, self.heartbeat_interval):
                returns = [ret for run in consecutive_runs(trials) for ret in self.impl.launcher.launch(
                    [tuple(f"{k}={v}" for k, v in {**t.params, **fixed}.items()) for t in run],
                    initial_job_idx=run[0].number)]
            self.tell(study, trials, returns)
        self.save_results(study)

    def within_total(self, study: optuna.Study, trials: list[optuna.trial.Trial]) -> list[optuna.trial.Trial]:
        """The asked trials that are among the study's first `n_trials` counted ones. Workers that counted at the
        same moment may together ask for more; every worker sees the same order, so exactly the excess is failed
        (marked `mlgen_skipped`) without running."""
        counted = sorted(t.number for t in study.get_trials(deepcopy=False, states=COUNTED_STATES))
        allowed = set(counted[: self.impl.n_trials])
        for trial in trials:
            if trial.number not in allowed:
                trial.set_user_attr("mlgen_skipped", f"n_trials={self.impl.n_trials} reached by other workers")
                study.tell(trial, state=TrialState.FAIL)
        return [t for t in trials if t.number in allowed]

    def search_space(self, arguments: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Optuna distributions and fixed values from `hydra.sweeper.params` and the command line, parsed as
        hydra-optuna-sweeper parses them."""
        if self.impl.search_space is not None:
            raise ConfigError("hydra.sweeper.search_space is deprecated and not read by mlgen's sweeper. "
                              "Fix: give the search space as hydra.sweeper.params (see conf/hparams_search).")
        if isinstance(self.impl.sampler, functools.partial):  # the grid sampler needs the space first
            raise ConfigError("hydra/sweeper/sampler=grid is not supported by hydra/sweeper=mlgen_optuna. Fix: use "
                              "Hydra's basic sweeper for grids (hparams_search=classifier_grid), or the tpe sampler.")
        params = [f"{k}={v}" for k, v in (self.impl.params or {}).items()]
        space, fixed = optuna_search_space([*params, *arguments])
        return {k: v for k, v in space.items() if k not in fixed}, fixed

    def check_same_sweep(self, study: optuna.Study) -> None:
        """A continued study must be the same experiment: the same command-line overrides as at its start."""
        overrides = sorted(OmegaConf.to_container(self.impl.config.hydra.overrides.task))
        started = study.user_attrs.get(OVERRIDES_ATTR)
        if started is None:
            study.set_user_attr(OVERRIDES_ATTR, overrides)
        elif started != overrides:
            raise ConfigError(
                f"hydra.sweeper.study_name={study.study_name} in hydra.sweeper.storage={self.impl.storage} is a sweep "
                f"started with the overrides {' '.join(started)}, but this command has {' '.join(overrides)}. "
                f"Trials of different settings in one study would be compared as one experiment. Fix: continue it "
                f"with the same overrides, or start a new sweep (another hydra.sweep.dir or hydra.sweeper.study_name)."
            )

    def announce(self, study: optuna.Study) -> None:
        done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
        log.info(f"Study {study.study_name!r} in {self.impl.storage or 'memory'}: {done} of "
                 f"{self.impl.n_trials} trials done, sweep dir {self.sweep_dir}")
        if self.impl.storage:
            log.info(f"After a stop, the same command with hydra.sweep.dir={self.sweep_dir} continues this sweep "
                     f"(and more workers can join it the same way).")

    @contextmanager
    def fail_if_stopped(self, study: optuna.Study, trials: list[optuna.trial.Trial]) -> Iterator[None]:
        """Ctrl-C, a stopped launcher or a crash: fail the trials it was running, so a continued sweep runs them again."""
        try:
            yield
        except BaseException:
            for trial in trials:
                study.tell(trial, state=TrialState.FAIL)
            log.warning(f"Sweep stopped: trial(s) {', '.join(str(t.number) for t in trials)} marked failed. "
                        f"Continue with the same command and hydra.sweep.dir={self.sweep_dir}.")
            raise

    def tell(self, study: optuna.Study, trials: list[optuna.trial.Trial], returns: Sequence[JobReturn]) -> None:
        """Tell Optuna each job's outcome; fail like hydra-optuna-sweeper past `max_failure_rate`."""
        failed = []
        for trial, ret in zip(trials, returns):
            error = failed_job_error(ret) if ret.status != JobStatus.COMPLETED else None
            value = _float(ret.return_value) if error is None else None
            if isinstance(error, optuna.TrialPruned):
                study.tell(trial, state=TrialState.PRUNED)
            elif value is not None and math.isfinite(value):
                study.tell(trial, values=[value])
            else:  # a diverged run (nan) fails only its trial; an error or a missing objective counts as a failure
                study.tell(trial, state=TrialState.FAIL)
                log.warning(f"Trial {trial.number} failed: {error or f'objective {ret.return_value!r}'}")
                if value is None:
                    failed.append(ret)
        if failed and len(failed) / len(returns) > self.impl.max_failure_rate:
            log.error(f"{len(failed)} of {len(returns)} trials failed (max_failure_rate={self.impl.max_failure_rate}).")
            for ret in failed:
                ret.return_value  # re-raises the job's exception with its traceback, as hydra-optuna-sweeper does
            raise ValueError(f"Objectives must be numbers; trials returned {[r.return_value for r in failed]}.")

    def save_results(self, study: optuna.Study) -> None:
        """`optimization_results.yaml` at the sweep root, as hydra-optuna-sweeper writes it."""
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not complete:
            log.warning("No trial of the study completed: no best trial.")
            return
        if len(study.directions) == 1:
            best = study.best_trial
            results = {"name": "optuna", "best_params": best.params, "best_value": best.value}
            log.info(f"Best parameters: {best.params}")
            log.info(f"Best value: {best.value}")
        else:
            results = {"name": "optuna", "solutions": [{"params": t.params, "values": t.values} for t in study.best_trials]}
        OmegaConf.save(OmegaConf.create(results), self.sweep_dir / "optimization_results.yaml")


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
