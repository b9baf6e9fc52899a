"""mlgen's requeue callback in one process, signal and all, without Slurm: a run preempted by a real
SIGUSR1 and resumed from its hpc checkpoint logs exactly the rows (steps and values) of an
uninterrupted run into one CSV file, and ends with the same weights."""

from __future__ import annotations

import csv
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from mlgen.compat import processed_training_batches
from mlgen.data.in_memory import EpochPermutation, InMemoryLoader
from mlgen.distributed import requeue
from mlgen.distributed.requeue import SlurmRequeue
from mlgen.tracking.csv_logger import ResumableCSVLogger

EPOCHS, BATCHES = 3, 8


class Regression(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("train/loss", loss)  # per step (epoch means across a resume are mlgen's models' part)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val/loss", nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=0.05)

    def train_dataloader(self) -> InMemoryLoader:  # resumes mid-epoch at the first batch not trained
        x = torch.randn(BATCHES * 4, 4, generator=torch.Generator().manual_seed(0))
        return InMemoryLoader(x, x.sum(1, keepdim=True), 4, EpochPermutation(len(x), shuffle=True, seed=0),
                              completed_batches=lambda: processed_training_batches(self.trainer))

    def val_dataloader(self) -> InMemoryLoader:
        x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
        return InMemoryLoader(x, x.sum(1, keepdim=True), 4, EpochPermutation(len(x), shuffle=False, seed=0))


class SignalAt(pl.Callback):
    """Sends this process a real SIGUSR1 when training reaches `step`."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGUSR1)


def fit(root: Path, callbacks: list[pl.Callback], ckpt_path: str | None = None) -> Regression:
    pl.seed_everything(0)
    model = Regression()
    trainer = pl.Trainer(default_root_dir=root, max_epochs=EPOCHS, logger=ResumableCSVLogger(root, name="csv", version=""),
                         log_every_n_steps=1, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, num_sanity_val_steps=0, callbacks=callbacks)
    trainer.fit(model, ckpt_path=ckpt_path)
    return model


def rows(root: Path) -> list[dict[str, str]]:
    with open(root / "csv" / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("preempt_at", [5, BATCHES, BATCHES + 3])  # mid-epoch, at an epoch boundary, later
def test_resumed_run_logs_every_row_once_at_the_uninterrupted_step(tmp_path: Path, monkeypatch, preempt_at: int) -> None:
    requeues: list[tuple] = []
    monkeypatch.setattr(requeue.atexit, "register", lambda func, *args: requeues.append(args))
    reference = fit(tmp_path / "reference", [])

    run = tmp_path / "preempted"
    with pytest.raises(SystemExit) as exited:
        fit(run, [SlurmRequeue(), SignalAt(preempt_at)])
    assert exited.value.code == 0
    hpc = run / "hpc_ckpt_1.ckpt"
    assert requeues == [(str(hpc),)]  # rank 0 requeues after its loggers closed
    assert torch.load(hpc, weights_only=False)["global_step"] == preempt_at  # saved before the next batch
    first_attempt = rows(run)
    resumed = fit(run, [SlurmRequeue()], ckpt_path=str(hpc))

    expected = rows(tmp_path / "reference")
    assert len(expected) == EPOCHS * (BATCHES + 1)  # a row per step and a validation row per epoch
    kept = [{key: row[key] for key in first_attempt[0]} for row in rows(run)[: len(first_attempt)]]
    assert kept == first_attempt  # the first attempt's rows are kept (the file gained the later columns)
    assert rows(run) == expected  # every row once, at the same step, with the same value
    for name, tensor in reference.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], tensor, rtol=0, atol=0)
