"""Real SIGTERM and SIGINT to a real `mlgen-train` subprocess: last.ckpt saved at the next step boundary,
the exact resume command printed, exit 143 / 130, the W&B run closed with that code; the printed command
resumes the run in its own dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.faults.cli import REPO, run_cli
from tests.helpers.wandb_runs import offline_run_dirs, read_offline_run

STEPS_PER_EPOCH = 162  # digits: 1293 training rows (after the validation split) in batches of 8
SLOW = ["trainer=cpu", "logger=wandb", "trainer.enable_progress_bar=false", "callbacks.model_summary=null",
        "data.batch_size=8", "trainer.max_epochs=50", "trainer.log_every_n_steps=1"]


MID_EPOCH_1 = STEPS_PER_EPOCH + 40
# from that step on every step takes >= 50 ms, so epoch 1 has >= 6 s left when the test sends its signal
PACING = ["+callbacks.pacing._target_=tests.faults.pacing.SlowFromStep", f"+callbacks.pacing.step={MID_EPOCH_1}"]


def _start(tmp_path):
    env = {**os.environ, "MLGEN_LOG_DIR": str(tmp_path / "logs"), "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    marker = tmp_path / "mid-epoch-1"
    args = [*SLOW, *PACING, f"+callbacks.pacing.marker={marker}"]
    return subprocess.Popen([sys.executable, "-m", "mlgen.cli", "train", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), marker


def _wait_for(marker, proc, timeout=180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.exists():
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.kill()
    pytest.fail("training did not reach the middle of epoch 1 in time")


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_saves_at_the_next_step_prints_the_resume_command_and_exits_with_its_code(signum, code, tmp_path):
    proc, marker = _start(tmp_path)
    _wait_for(marker, proc)
    (last,) = list((tmp_path / "logs").rglob("checkpoints/last.ckpt"))  # written at the end of epoch 0
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    command = f"mlgen-train ckpt_path={last.resolve()}"
    assert command in err, err[-3000:]
    saved = torch.load(last, map_location="cpu", weights_only=True)
    # saved at a step boundary soon after the signal, mid-epoch: the work of the interrupted epoch is kept
    assert MID_EPOCH_1 <= saved["global_step"] < 2 * STEPS_PER_EPOCH
    (wandb_run,) = offline_run_dirs(last.parents[1])
    assert read_offline_run(wandb_run).exit_code == code  # W&B records a stopped run, not a finished one

    # the printed command, with only what changes, resumes in the same run dir and W&B run (the test's own
    # pacing callback is outside the checkpoint allowlist, so it is trusted explicitly, as a user would)
    epochs = saved["epoch"] + 1  # finish the interrupted epoch only
    trusted = "trusted_targets=[tests.faults.pacing.SlowFromStep]"
    resumed = run_cli("train", [command.split()[1], f"trainer.max_epochs={epochs}", "test=false", trusted],
                      tmp_path, env={"WANDB_MODE": "offline"})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == epochs * STEPS_PER_EPOCH
    assert len(list((tmp_path / "logs" / "train" / "runs").iterdir())) == 1
    runs = offline_run_dirs(last.parents[1])
    assert {p.name.rsplit("-", 1)[1] for p in runs} == {wandb_run.name.rsplit("-", 1)[1]}  # one W&B run id


def test_a_crash_says_which_run_dir_and_last_checkpoint_to_resume_from(tmp_path):
    proc = run_cli("train", ["trainer=cpu", "logger=csv", "trainer.enable_progress_bar=false",
                             "callbacks.model_summary=null", "trainer.max_epochs=3",
                             "+callbacks.crash._target_=tests.faults.crashing.CrashAtEpoch", "+callbacks.crash.epoch=1"],
                   tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    (last,) = list((tmp_path / "logs").rglob("checkpoints/last.ckpt"))
    assert f"resume from its last checkpoint with:\n  mlgen-train ckpt_path={last.resolve()}" in proc.stderr
    assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] == 0
