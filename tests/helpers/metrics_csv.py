"""Read a run's logged values back from its CSV logger file."""

from __future__ import annotations

import csv
from typing import Any


def logged_curve(run: Any, name: str) -> list[float]:
    """Every logged value of `name`, in order, from `<run dir>/csv/metrics.csv` (`run`: a RunResult)."""
    with open(run.output_dir / "csv" / "metrics.csv") as handle:
        return [float(row[name]) for row in csv.DictReader(handle) if row.get(name)]
