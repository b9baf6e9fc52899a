"""What a person reads: the run dir first, whole paths at the end (40-column console and a pipe), no tips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_paths_are_never_wrapped_and_the_run_dir_comes_first(tmp_path):
    logs = tmp_path / ("a-rather-long-folder-name-" * 7)  # run dir and checkpoint paths > 200 characters
    env = {**os.environ, "MLGEN_LOG_DIR": str(logs), "COLUMNS": "40", "WANDB_MODE": "offline"}
    cli = Path(sys.executable).with_name("mlgen-train")
    proc = subprocess.run([str(cli), "logger=csv", "trainer=cpu", "trainer.max_epochs=1", "trainer.enable_progress_bar=false"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (logs / "train" / "runs").iterdir()
    (checkpoint,) = (run_dir / "checkpoints").glob("epoch_*.ckpt")
    assert len(str(checkpoint)) > 200
    lines = proc.stdout.splitlines()
    assert f"run dir: {run_dir}" in lines and f"best checkpoint: {checkpoint}" in lines, proc.stdout[-2000:]
    assert f"last checkpoint: {run_dir / 'checkpoints' / 'last.ckpt'}" in lines and f"log: {run_dir / 'train.log'}" in lines
    log = proc.stdout + proc.stderr
    first = log.index(f"run dir: {run_dir}")  # announced through logging before training starts
    assert first < log.index("`Trainer.fit` stopped")
    assert "💡 Tip" not in log and "LeafSpec" not in log
