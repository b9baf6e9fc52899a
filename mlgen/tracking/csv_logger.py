"""Lightning's CSVLogger, except that a resumed run keeps the rows of the attempts before it.

Lightning's CSV writer deletes `metrics.csv` when it finds one ("Previous log files in this directory
will be deleted"), so a Slurm job requeued into its own run dir lost the rows of its first attempt.
Here the file is read before Lightning's writer starts and put back, and the writer continues with
its columns. Each attempt logs only steps after its checkpoint, so every row is there once.
Written by hand: Lightning's CSVLogger has no append mode.
"""

from __future__ import annotations

import csv
import os
import warnings
from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter


class ResumableCSVLogger(CSVLogger):
    """`CSVLogger` (same arguments) that appends to the `metrics.csv` of an earlier attempt."""

    def __init__(self, save_dir: str, name: str | None = "lightning_logs", version: int | str | None = None,
                 prefix: str = "", flush_logs_every_n_steps: int = 100) -> None:
        super().__init__(save_dir, name=name, version=version, prefix=prefix,
                         flush_logs_every_n_steps=flush_logs_every_n_steps)
        self._earlier_rows_kept = False

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._earlier_rows_kept:
            return super().experiment
        path = os.path.join(self.log_dir, ExperimentWriter.NAME_METRICS_FILE)
        earlier = open(path, newline="").read() if os.path.isfile(path) else None
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Previous log files in this directory will be deleted")
            writer = super().experiment  # deletes metrics.csv
        if earlier is not None:
            with open(path, "w", newline="") as handle:
                handle.write(earlier)
            writer.metrics_keys = next(csv.reader(earlier.splitlines()), [])
        self._earlier_rows_kept = True
        return writer
