"""`mlgen-plot DIR`: PNGs of a run's metrics or of a sweep's trials, without W&B.

A run dir (logged with the CSV logger) gets one figure per metric family: `train/loss_step`,
`train/loss_epoch`, `val/loss` and `test/loss` share `loss.png`; `val/acc` and `test/acc` share `acc.png`;
a metric without a split prefix (e.g. a learning-rate monitor's `lr-Adam`) gets its own. Test metrics,
logged once, show as a marker. Lightning's CSVLogger writes the numbers.

A sweep dir (a multirun's root: its trials hold `trial.json`, see mlgen.tracking.sweep_summary) gets
`objective.png` (each trial's objective and the best so far), one `<key>.png` per swept key (value against
objective), and `curves.png` (the objective per epoch of every trial logged with the CSV logger, where
pruned trials stop). Pruned trials show as crosses at their last reported value. matplotlib (the `plot`
extra) draws them all.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from mlgen.errors import ConfigError, DataError
from mlgen.tracking.sweep_summary import TRIAL_FILE, read_trials, sweep_direction, swept_overrides

_AXES = ("step", "epoch")
_SUFFIXES = ("_step", "_epoch")


def metric_family(name: str) -> str:
    """`train/loss_step` -> `loss`; `val/acc` -> `acc`; `lr-Adam` -> `lr-Adam`."""
    base = name.split("/", 1)[1] if "/" in name else name
    for suffix in _SUFFIXES:
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def find_metric_files(run_dir: Path) -> list[Path]:
    """The CSV logger's `metrics.csv` files under a run dir (one per logger version)."""
    if not run_dir.is_dir():
        raise DataError(f"RUN_DIR={run_dir} is not a folder. Fix: pass a run dir, e.g. logs/train/runs/<run>.")
    files = sorted(run_dir.rglob("metrics.csv"))
    if not files:
        raise DataError(
            f"RUN_DIR={run_dir} holds no metrics.csv, so it was not logged with the CSV logger. "
            f"Fix: train with `mlgen-train logger=csv` (or logger=[csv,wandb]) and plot that run dir."
        )
    return files


def read_series(files: list[Path], x: str) -> dict[str, list[tuple[float, float]]]:
    """metric -> [(x, value)] over all rows of all files; empty cells (other metrics' rows) are skipped."""
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for path in files:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                if not row.get(x):
                    continue
                for name, cell in row.items():
                    if name in _AXES or not cell:
                        continue
                    value = float(cell)
                    if math.isfinite(value):
                        series[name].append((float(row[x]), value))
    return dict(series)


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ConfigError(f"mlgen-plot needs matplotlib ({err}). Fix: pip install 'mlgen[plot]'.") from None
    return plt


def _file_name(name: str) -> str:
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"


def plot_dir(path: Path, out_dir: Path | None = None, x: str = "step") -> list[Path]:
    """A sweep dir gets the sweep's plots, a run dir its metric curves (default: into DIR/plots)."""
    return plot_sweep(path, out_dir) if is_sweep_dir(path) else plot_run(path, out_dir, x)


def plot_run(run_dir: Path, out_dir: Path | None = None, x: str = "step") -> list[Path]:
    """Write `<family>.png` for every metric family of the run into `out_dir` (default RUN_DIR/plots)."""
    if x not in _AXES:
        raise ConfigError(f"--x={x} is invalid: it must be one of {', '.join(_AXES)}. Fix: --x step.")
    plt = _pyplot()
    series = read_series(find_metric_files(run_dir), x)
    families: dict[str, list[str]] = defaultdict(list)
    for name in sorted(series):
        families[metric_family(name)].append(name)
    out_dir = out_dir or run_dir / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for family, names in sorted(families.items()):
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        for name in names:
            xs, ys = zip(*series[name])
            if len(xs) == 1:
                ax.plot(xs, ys, marker="*", markersize=12, linestyle="none", label=f"{name} = {ys[0]:.4g}")
            else:
                ax.plot(xs, ys, marker="." if len(xs) < 50 else None, label=name)
        ax.set_xlabel(x)
        ax.set_ylabel(family)
        ax.set_title(f"{family} — {run_dir.name}")
        written.append(_save(plt, fig, ax, out_dir / _file_name(family)))
    return written


def is_sweep_dir(path: Path) -> bool:
    """A multirun's root: its trials' run dirs hold a `trial.json`."""
    return path.is_dir() and any(path.glob(f"*/{TRIAL_FILE}"))


@dataclass
class SweepPoints:
    """What the sweep plots draw: (trial number or swept value, objective) pairs."""

    objective_name: str | None
    direction: str | None
    completed: list[tuple[int, float]] = field(default_factory=list)
    pruned: list[tuple[int, float]] = field(default_factory=list)
    best_so_far: list[tuple[int, float]] = field(default_factory=list)
    # swept key -> [(value, objective, pruned?)] of the trials with an objective
    params: dict[str, list[tuple[float | str, float, bool]]] = field(default_factory=dict)


def sweep_points(trials: list[dict[str, Any]], direction: str | None) -> SweepPoints:
    """Points of completed and pruned trials (failed ones have no objective), and at each of them the best
    objective of the completed trials so far (none without a direction)."""
    points = SweepPoints(next((t["objective_name"] for t in trials if t.get("objective_name")), None), direction)
    swept, values = swept_overrides(trials)
    best = None
    for trial, overrides in zip(trials, values):
        value = trial.get("objective")
        if value is None or trial["status"] not in ("completed", "pruned"):
            continue
        pruned = trial["status"] == "pruned"
        (points.pruned if pruned else points.completed).append((trial["number"], value))
        if not pruned and direction in ("maximize", "minimize"):
            best = value if best is None else (max if direction == "maximize" else min)(best, value)
        if best is not None:
            points.best_so_far.append((trial["number"], best))
        for key in swept:
            if key in overrides:
                points.params.setdefault(key, []).append((_number_or_text(overrides[key]), value, pruned))
    return points


def _number_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def _stored_direction(sweep_dir: Path, trials: list[dict[str, Any]]) -> str | None:
    """The summary's direction, else (a sweep stopped before its summary) the first trial's saved config's."""
    summary = sweep_dir / "trials.json"
    if summary.is_file():
        return json.loads(summary.read_text()).get("direction")
    hydra_dir = Path(trials[0]["run_dir"]) / ".hydra"
    if not (hydra_dir / "config.yaml").is_file() or not (hydra_dir / "hydra.yaml").is_file():
        return None
    return sweep_direction(OmegaConf.merge(OmegaConf.load(hydra_dir / "config.yaml"),
                                           OmegaConf.load(hydra_dir / "hydra.yaml")), None)


def plot_sweep(sweep_dir: Path, out_dir: Path | None = None) -> list[Path]:
    """Write `objective.png`, `<key>.png` per swept key and `curves.png` into `out_dir` (default SWEEP_DIR/plots)."""
    trials = read_trials(sweep_dir)
    if not trials:
        raise DataError(f"SWEEP_DIR={sweep_dir} holds no finished trial (no */{TRIAL_FILE}). Fix: pass the sweep dir "
                        f"a multirun printed, e.g. logs/train/multiruns/<sweep>, once a trial has finished.")
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    points = sweep_points(trials, _stored_direction(sweep_dir, trials))
    out_dir = out_dir or sweep_dir / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    ylabel = points.objective_name or "objective"
    written = []

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    if points.best_so_far:
        ax.step(*zip(*points.best_so_far), where="post", color="C1", zorder=1, label=f"best so far ({points.direction})")
    if points.completed:
        ax.plot(*zip(*points.completed), "o", color="C0", zorder=2, label="completed")
    if points.pruned:
        ax.plot(*zip(*points.pruned), "X", color="C3", markersize=8, zorder=2, label="pruned (last value)")
    failed = sum(t["status"] not in ("completed", "pruned") for t in trials)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{ylabel} per trial — {sweep_dir.name}" + (f" ({failed} failed)" if failed else ""))
    written.append(_save(plt, fig, ax, out_dir / "objective.png"))

    for key, rows in sorted(points.params.items()):
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        numeric = all(isinstance(v, float) for v, _, _ in rows)
        categories = list(dict.fromkeys(str(v) for v, _, _ in rows))
        for pruned, marker, colour, label in ((False, "o", "C0", "completed"), (True, "X", "C3", "pruned")):
            chosen = [(v if numeric else categories.index(str(v)), y) for v, y, p in rows if p == pruned]
            if chosen:
                ax.plot(*zip(*chosen), marker, color=colour, label=label)
        if numeric and min(v for v, _, _ in rows) > 0 and max(v for v, _, _ in rows) >= 10 * min(v for v, _, _ in rows):
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(categories)), categories)
        ax.set_xlabel(key)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{ylabel} against {key} — {sweep_dir.name}")
        written.append(_save(plt, fig, ax, out_dir / _file_name(key)))

    curves = _objective_curves(trials, points.objective_name)
    if curves:
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        for number, (xs, ys) in curves.items():
            ax.plot(xs, ys, marker="." if len(xs) < 50 else None, label=f"trial {number}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{ylabel} per epoch of each trial — {sweep_dir.name}")
        written.append(_save(plt, fig, ax, out_dir / "curves.png", legend=len(curves) <= 12))
    return written


def _objective_curves(trials: list[dict[str, Any]], name: str | None) -> dict[int, tuple[list[float], list[float]]]:
    """trial number -> the objective per epoch, for trials logged with the CSV logger."""
    curves = {}
    for trial in trials:
        files = sorted(Path(trial["run_dir"]).rglob("metrics.csv")) if name else []
        series = read_series(files, "epoch").get(name) if files else None
        if series:
            curves[trial["number"]] = tuple(map(list, zip(*series)))
    return curves


def _save(plt: Any, fig: Any, ax: Any, path: Path, legend: bool = True) -> Path:
    ax.grid(alpha=0.3)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
