"""GAN LR schedulers: `model.scheduler` (generator) and `model.d_scheduler` (discriminator) are stepped once per
epoch although GANs optimise manually, and a run resumed from its checkpoint continues the same schedule."""

from __future__ import annotations

import csv

import pytest
import torch

from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config

STEP_LR = "{_target_:torch.optim.lr_scheduler.StepLR,step_size:1,gamma:0.5}"
G_LR, D_LR = 2e-4, 4e-4
EPOCHS = 4


def _lr_per_epoch(run):
    """Learning rates LearningRateMonitor logged at each epoch start: (generator, discriminator)."""
    with open(run / "csv" / "metrics.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("lr-Adam")]
    return [float(row["lr-Adam"]) for row in rows], [float(row["lr-Adam-1"]) for row in rows]


def _checkpoint(run):
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


@pytest.mark.slow
def test_both_schedules_halve_the_lr_every_epoch_and_survive_a_resume(tmp_path):
    common = [*CPU_QUICK, "experiment=digits_cgan", "callbacks=default", f"trainer.max_epochs={EPOCHS}", "trainer.deterministic=true",
              "data.train_fraction=0.2", "test=false", f"model.optimizer.lr={G_LR}", f"model.d_optimizer.lr={D_LR}",
              f"model.scheduler={STEP_LR}", f"model.d_scheduler={STEP_LR}",
              "+callbacks.lr._target_=pytorch_lightning.callbacks.LearningRateMonitor", "+callbacks.lr.logging_interval=epoch"]
    straight = tmp_path / "straight"
    train(compose_config("train", common, straight))
    g_lr, d_lr = _lr_per_epoch(straight)
    assert g_lr == pytest.approx([G_LR * 0.5**e for e in range(EPOCHS)], rel=1e-6)  # 2e-4, 1e-4, 5e-5, 2.5e-5
    assert d_lr == pytest.approx([D_LR * 0.5**e for e in range(EPOCHS)], rel=1e-6)
    final = _checkpoint(straight)
    assert [s["last_epoch"] for s in final["lr_schedulers"]] == [EPOCHS, EPOCHS]  # one step per epoch, each
    assert [o["param_groups"][0]["lr"] for o in final["optimizer_states"]] == pytest.approx(
        [G_LR * 0.5**EPOCHS, D_LR * 0.5**EPOCHS], rel=1e-6)

    interrupted, resumed = tmp_path / "interrupted", tmp_path / "resumed"
    train(compose_config("train", [*common, "+callbacks.stop._target_=tests.helpers.callbacks.StopAfterEpochs",
                                   "+callbacks.stop.epochs=2"], interrupted))
    assert [s["last_epoch"] for s in _checkpoint(interrupted)["lr_schedulers"]] == [2, 2]
    # the callbacks this test adds are in the checkpoint's config, outside mlgen's allowlist
    trusted = "trusted_targets=[tests.helpers.callbacks.StopAfterEpochs,pytorch_lightning.callbacks.LearningRateMonitor]"
    train(compose_config("train", [*common, f"ckpt_path={interrupted / 'checkpoints' / 'last.ckpt'}", "++callbacks.stop=null", trusted], resumed))
    g_resumed, d_resumed = _lr_per_epoch(resumed)
    assert (g_resumed[-2:], d_resumed[-2:]) == (g_lr[2:], d_lr[2:])  # epochs 2 and 3 at the straight run's rates
    again = _checkpoint(resumed)
    assert again["lr_schedulers"] == final["lr_schedulers"]
    for name, weight in final["state_dict"].items():
        assert torch.equal(again["state_dict"][name], weight), name
