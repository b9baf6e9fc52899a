"""The progress lines a batch job prints instead of TQDM frames, including in a run resumed mid-epoch."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar

from mlgen.distributed import requeue
from mlgen.distributed.requeue import SlurmRequeue
from mlgen.tracking.progress import LogLineProgress, ProgressForStdout

from .test_requeue_steps import EPOCHS, Regression, SignalAt


def test_a_file_gets_plain_lines_and_a_terminal_tqdm(monkeypatch) -> None:
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    assert isinstance(ProgressForStdout(), LogLineProgress)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert isinstance(ProgressForStdout(refresh_rate=5), TQDMProgressBar)


def _fit(root: Path, callbacks: list[pl.Callback], ckpt_path: str | None = None) -> None:
    pl.seed_everything(0)
    pl.Trainer(default_root_dir=root, max_epochs=EPOCHS, logger=False, enable_checkpointing=False,
               enable_model_summary=False, num_sanity_val_steps=0,
               callbacks=[LogLineProgress(), *callbacks]).fit(Regression(), ckpt_path=ckpt_path)


def _lines(out: str) -> list[tuple[str, str, float]]:
    return [(e, s, float(t)) for e, s, t in re.findall(r"^epoch (\d)/3 done \(step (\d+), (\d+\.\d) s\)", out, flags=re.M)]


def test_one_line_per_epoch_also_after_a_mid_epoch_resume(tmp_path: Path, monkeypatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    _fit(tmp_path / "whole", [])
    lines = _lines(capsys.readouterr().out)
    assert [(e, s) for e, s, _ in lines] == [("1", "8"), ("2", "16"), ("3", "24")]

    monkeypatch.setattr(requeue.atexit, "register", lambda *args: None)
    with pytest.raises(SystemExit):
        _fit(tmp_path / "preempted", [SlurmRequeue(), SignalAt(5)])
    assert _lines(capsys.readouterr().out) == []  # preempted inside the first epoch
    _fit(tmp_path / "preempted", [SlurmRequeue()], ckpt_path=str(tmp_path / "preempted" / "hpc_ckpt_1.ckpt"))
    resumed = _lines(capsys.readouterr().out)
    assert [(e, s) for e, s, _ in resumed] == [("1", "8"), ("2", "16"), ("3", "24")]
    assert all(seconds < 60 for _, _, seconds in lines + resumed)  # timed from the attempt's start, not from 0
