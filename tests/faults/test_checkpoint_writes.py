"""The last good checkpoint always survives: kill -9 in the middle of a save, and a disk that fills up
during one, injected for real on real filesystems (tmpfs mounts), never leave a partial checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mlgen.tasks.train import train
from tests.faults.cli import REPO, run_cli
from tests.faults.mounts import tmpfs
from tests.helpers.config import CPU_QUICK, compose_config

# One training and one validation batch per epoch: the time goes into the checkpoint writes.
SHORT_EPOCHS = [*CPU_QUICK, "trainer.limit_train_batches=1", "trainer.limit_val_batches=1",
                "trainer.num_sanity_val_steps=0", "data.eval_batch_size=64", "test=false"]
# ~100 MB checkpoints (weights and AdamW's two moments), so a save takes long enough to be caught mid-write.
BIG_NET = "model.net.hidden=[4096,2048]"
# ~3.6 MB checkpoints: a 6 MB disk holds epoch 0's checkpoint (its best and last.ckpt are one file, hard
# linked: mlgen/checkpoints/atomic_io.py), but not a second file next to it.
SMALL_NET = "model.net.hidden=[512,512]"


def _epoch(path: Path) -> int:
    return torch.load(path, weights_only=True)["epoch"]


def _written_files(pid: int, folders: list[Path]) -> list[Path]:
    """Files under `folders` that process `pid` has open (during training it opens files there only to write them)."""
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = Path(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:  # closed meanwhile
            continue
        if any(folder in target.parents for folder in folders):
            found.append(target)
    return found


def _kill_during_a_save(proc: subprocess.Popen, last: Path, watched: list[Path], timeout: float = 180) -> None:
    """SIGKILL `proc` while it writes a checkpoint after a first complete last.ckpt, i.e. once a file under
    `watched` is open in it and has data in it."""
    deadline = time.monotonic() + timeout
    armed = False
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            writing = [f for f in _written_files(proc.pid, watched) if f.exists() and f.stat().st_size > 0]
        except FileNotFoundError:  # /proc entry gone: the process ended
            break
        if armed and writing:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        armed = armed or (last.is_file() and not writing)
        time.sleep(0.0005)
    proc.kill()
    pytest.fail(f"the run ended or timed out before a checkpoint save could be caught (exit {proc.poll()})")


@pytest.mark.slow
@pytest.mark.parametrize("tmpdir_on", ["same filesystem", "another filesystem"])
def test_kill_9_during_a_save_keeps_the_last_checkpoint(tmpdir_on, tmp_path):
    with tmpfs(tmp_path / "runs-fs", "2g") as runs_fs:
        run_dir = runs_fs / "run"
        checkpoints = run_dir / "checkpoints"
        if tmpdir_on == "same filesystem":
            tmpdir, watched = runs_fs / "tmp", [checkpoints, runs_fs / "tmp"]
        else:  # tmp_path is on the disk; watch only the run dir, so the kill lands while the checkpoint itself is written
            tmpdir, watched = tmp_path / "tmp", [checkpoints]
        tmpdir.mkdir()
        env = {**os.environ, "TMPDIR": str(tmpdir), "MLGEN_LOG_DIR": str(tmp_path / "logs"), "OMP_NUM_THREADS": "1"}
        args = [*SHORT_EPOCHS, BIG_NET, "trainer.max_epochs=4", f"hydra.run.dir={run_dir}"]
        proc = subprocess.Popen([sys.executable, "-m", "mlgen.cli", "train", *args], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _kill_during_a_save(proc, checkpoints / "last.ckpt", watched)
        assert proc.returncode == -signal.SIGKILL

        # every checkpoint left is complete (a partial one would not load), last.ckpt among them
        survivors = sorted(checkpoints.glob("*.ckpt"))
        assert checkpoints / "last.ckpt" in survivors
        killed_at = {p.name: _epoch(p) for p in survivors}
        assert killed_at["last.ckpt"] < 3

        # resuming from it in the same run dir finishes the run and clears what the killed save left
        cfg = compose_config("train", [*SHORT_EPOCHS, BIG_NET, "trainer.max_epochs=4",
                                       f"ckpt_path={checkpoints / 'last.ckpt'}"], run_dir)
        train(cfg)
        assert _epoch(checkpoints / "last.ckpt") == 3
        leftovers = [p for folder in (checkpoints, tmpdir) for p in folder.iterdir() if p.suffix != ".ckpt"]
        assert not leftovers, f"a killed save left {leftovers}"


def test_disk_full_during_a_save_keeps_the_earlier_checkpoints(tmp_path):
    with tmpfs(tmp_path / "small-disk", "6m") as disk:
        run_dir = disk / "run"
        checkpoints = run_dir / "checkpoints"
        proc = run_cli("train", [*SHORT_EPOCHS, SMALL_NET, "trainer.max_epochs=3", f"hydra.run.dir={run_dir}"], tmp_path)
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
        message = proc.stderr[proc.stderr.index("mlgen error:"):]
        assert "could not write checkpoint" in message and "the disk is full" in message and "MiB free" in message
        assert f"ckpt_path={checkpoints / 'last.ckpt'}" in message

        # epoch 0's checkpoints are intact; epoch 1's save left nothing behind, so nothing truncated is "best"
        assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch_000.ckpt", "last.ckpt"]
        assert (checkpoints / "epoch_000.ckpt").samefile(checkpoints / "last.ckpt")
        last = torch.load(checkpoints / "last.ckpt", weights_only=True)
        assert last["epoch"] == 0 and _epoch(checkpoints / "epoch_000.ckpt") == 0
        best = next(v["best_model_path"] for k, v in last["callbacks"].items() if k.startswith("ModelCheckpoint"))
        assert best.endswith("epoch_000.ckpt")

        # and the run resumes from them (on a disk with room)
        cfg = compose_config("train", [*SHORT_EPOCHS, SMALL_NET, "trainer.max_epochs=3",
                                       f"ckpt_path={checkpoints / 'last.ckpt'}"], tmp_path / "resumed")
        result = train(cfg)
        assert _epoch(tmp_path / "resumed" / "checkpoints" / "last.ckpt") == 2
        assert result.best_checkpoint is not None
