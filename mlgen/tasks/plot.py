"""`mlgen-plot RUN_DIR`: PNG curves of every metric a run logged with the CSV logger, without W&B.

One figure per metric family: `train/loss_step`, `train/loss_epoch`, `val/loss` and `test/loss` share
the figure `loss.png`; `val/acc` and `test/acc` share `acc.png`; a metric without a split prefix
(e.g. a learning-rate monitor's `lr-Adam`) gets its own. Test metrics, logged once, show as a marker.
Lightning's CSVLogger writes the numbers; matplotlib (the `plot` extra) draws them.
"""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from pathlib import Path

from mlgen.errors import ConfigError, DataError

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


def plot_run(run_dir: Path, out_dir: Path | None = None, x: str = "step") -> list[Path]:
    """Write `<family>.png` for every metric family of the run into `out_dir` (default RUN_DIR/plots)."""
    if x not in _AXES:
        raise ConfigError(f"--x={x} is invalid: it must be one of {', '.join(_AXES)}. Fix: --x step.")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ConfigError(f"mlgen-plot needs matplotlib ({err}). Fix: pip install 'mlgen[plot]'.") from None

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
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        fig.tight_layout()
        path = out_dir / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', family)}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written
