"""Summary of a Hydra multirun: every trial's overrides, objective and run dir, and the best trial.

A Hydra callback (`hydra.callbacks.sweep_summary` in conf/train.yaml), so it works for every sweeper
(basic grid, Optuna) and launcher. Each job writes its own `trial.json` from `on_job_end`, which runs
inside the job's process (a Slurm node under the submitit launcher); `on_multirun_end`, on the launching
machine, gathers them into `trials.csv` and `trials.json` at the sweep root and prints the best trial.
"""

from __future__ import annotations

import csv
import fcntl
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from mlgen.compat import failed_job_error

log = logging.getLogger(__name__)

TRIAL_FILE = "trial.json"
_DIRECTIONS = {"max": "maximize", "maximize": "maximize", "min": "minimize", "minimize": "minimize"}


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def trial_record(job_return: JobReturn) -> dict[str, Any]:
    """One trial as plain data: job number, status, overrides, objective and where its files are."""
    hydra_cfg = job_return.hydra_cfg.hydra
    cfg = job_return.cfg or {}
    record: dict[str, Any] = {
        "number": int(hydra_cfg.job.num),
        "status": job_return.status.name.lower(),
        "overrides": list(job_return.overrides or []),
        "objective_name": cfg.get("objective"),
        "objective": None,
        "run_dir": str(hydra_cfg.runtime.output_dir),
    }
    error = failed_job_error(job_return) if job_return.status != JobStatus.COMPLETED else None
    if error is None:
        record["objective"] = _number(job_return.return_value)
    elif _is_pruned(error):  # its objective: the last value it reported to Optuna
        record.update(status="pruned", objective=_number(getattr(error, "value", None)), reason=str(error))
    else:
        record["error"] = repr(error)
    return record


def _is_pruned(error: BaseException) -> bool:
    """Whether a trial stopped as Optuna pruned it (mlgen.tracking.pruning). Optuna is imported only when
    a sweep uses it: an error can be an Optuna one only if Optuna was imported."""
    optuna = sys.modules.get("optuna")
    return optuna is not None and isinstance(error, optuna.TrialPruned)


def read_trials(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every trial that finished in a sweep dir (each job's `trial.json`, also of earlier launches of a
    continued sweep and of other workers feeding it), by number."""
    return sorted((json.loads(p.read_text()) for p in sweep_dir.glob(f"*/{TRIAL_FILE}")), key=lambda t: t["number"])


def best_trial(trials: list[dict[str, Any]], direction: str | None) -> dict[str, Any] | None:
    """The completed trial with the best finite objective; None without a direction or any value."""
    scored = [t for t in trials if t["status"] == "completed" and _number(t["objective"]) is not None]
    if not scored or direction not in ("maximize", "minimize"):
        return None
    pick = max if direction == "maximize" else min
    return pick(scored, key=lambda t: t["objective"])


def sweep_direction(config: DictConfig, direction: str | None) -> str | None:
    """The configured direction, else the Optuna sweeper's, else the model's `monitor_mode`
    (when the objective is the monitored metric, as by default)."""
    candidates = [direction, OmegaConf.select(config, "hydra.sweeper.direction")]
    if OmegaConf.select(config, "objective") == OmegaConf.select(config, "model.monitor"):
        candidates.append(OmegaConf.select(config, "model.monitor_mode"))
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.lower() in _DIRECTIONS:
            return _DIRECTIONS[candidate.lower()]
    return None


def swept_overrides(trials: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, str]]]:
    """The keys whose override differs between trials (the swept ones), and each trial's overrides as a dict."""
    values = [dict(o.lstrip("+~").split("=", 1) for o in t["overrides"] if "=" in o) for t in trials]
    keys = sorted({k for v in values for k in v})
    return [k for k in keys if len({v.get(k) for v in values}) > 1], values


def write_summary(sweep_dir: Path, trials: list[dict[str, Any]], direction: str | None) -> dict[str, Any]:
    """Write `trials.json` (all overrides) and `trials.csv` (one column per override that differs
    between trials, i.e. per swept key) into `sweep_dir`."""
    best = best_trial(trials, direction)
    summary = {"direction": direction, "best": best, "trials": trials}
    (sweep_dir / "trials.json").write_text(json.dumps(summary, indent=2) + "\n")
    swept, values = swept_overrides(trials)
    with open(sweep_dir / "trials.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["number", "status", "objective_name", "objective", "best", *swept, "run_dir"])
        for t, v in zip(trials, values):
            writer.writerow([t["number"], t["status"], t["objective_name"], t["objective"],
                             best is not None and t["number"] == best["number"],
                             *(v.get(k, "") for k in swept), t["run_dir"]])
    return summary


class SweepSummary(Callback):
    """Args:
    direction: maximize or minimize the objective; null: the Optuna sweeper's direction, else
        the model's monitor_mode.
    """

    def __init__(self, direction: str | None = None) -> None:
        self.direction = direction

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if job_return.hydra_cfg is None or job_return.hydra_cfg.hydra.mode != RunMode.MULTIRUN:
            return
        record = trial_record(job_return)
        Path(record["run_dir"], TRIAL_FILE).write_text(json.dumps(record, indent=2) + "\n")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            log.warning("Sweep summary: no trial ran (no %s).", sweep_dir)
            return
        with open(sweep_dir / ".summary.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # workers feeding one Optuna sweep end in any order
            trials = read_trials(sweep_dir)
            if not trials:
                log.warning("Sweep summary: no trial finished under %s.", sweep_dir)
                return
            direction = sweep_direction(config, self.direction)
            summary = write_summary(sweep_dir, trials, direction)
        _print_best(summary, sweep_dir)


def _print_best(summary: dict[str, Any], sweep_dir: Path) -> None:
    from rich.console import Console

    console = Console(soft_wrap=True)
    best, trials = summary["best"], summary["trials"]
    done = sum(t["status"] == "completed" for t in trials)
    pruned = sum(t["status"] == "pruned" for t in trials)
    console.print(f"[bold]Sweep:[/bold] {done}/{len(trials)} trials completed{f', {pruned} pruned' if pruned else ''}; summary in "
                  f"{sweep_dir / 'trials.csv'} and {sweep_dir / 'trials.json'}")
    if best is None:
        console.print("No best trial: no finite objective, or no direction (set "
                      "hydra.callbacks.sweep_summary.direction=maximize|minimize).")
        return
    console.print(f"[bold green]Best trial #{best['number']}[/bold green]: {best['objective_name']} = "
                  f"{best['objective']:.6g} ({summary['direction']})\n  overrides: {' '.join(best['overrides'])}"
                  f"\n  run dir: {best['run_dir']}")
