"""Read offline W&B runs back with W&B's own reader (`wandb leet inspect --json`), for tests."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class OfflineRun:
    """What an offline run recorded: run settings, config, history rows, summary, artifacts."""

    path: Path
    run: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None

    def rows_with(self, key: str) -> list[dict[str, Any]]:
        return [row for row in self.history if key in row]


def offline_run_dirs(root: Path) -> list[Path]:
    """Every `offline-run-*` folder under `root`."""
    return sorted(p for p in Path(root).rglob("offline-run-*") if p.is_dir())


def read_offline_run(run_dir: Path) -> OfflineRun:
    """Parse every record of the run's `.wandb` file (the run must be finished: W&B flushes at finish)."""
    with tempfile.TemporaryDirectory() as cwd:  # leet writes a debug log into the current folder
        out = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run_dir)],
                             cwd=cwd, capture_output=True, text=True, timeout=120, check=True).stdout
    run = OfflineRun(Path(run_dir), run={})
    for line in out.splitlines():
        record = json.loads(line)
        kind = record.get("type")
        body = record.get(kind, {})
        if kind == "run":
            run.run = body
        elif kind == "config":
            run.config.update(body.get("update", {}))
        elif kind == "summary":
            run.summary.update(body.get("update", {}))
        elif kind == "history":
            run.history.append(body.get("item", {}))
        elif kind == "artifact":
            run.artifacts.append({**body, "metadata": json.loads(body.get("metadata") or "{}")})
        elif kind == "exit":
            run.exit_code = body.get("exit_code", 0)
    return run
