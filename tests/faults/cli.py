"""Run mlgen's commands in a subprocess, as a user does, for the fault-injection tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_cli(command: str, args: list[str], tmp_path: Path, env: dict[str, str] | None = None,
            timeout: float = 240) -> subprocess.CompletedProcess:
    """`mlgen-<command> args`, run from the repo so that test-only modules import."""
    env = {**os.environ, "MLGEN_LOG_DIR": str(tmp_path / "logs"), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "mlgen.cli", command, *args], check=False, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
