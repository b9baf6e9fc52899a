"""Divergence: a real NaN (the VAE at lr=1e4) stops the run at once with the step, the value's name and
the remedies; no checkpoint with non-finite weights is ever written; non-finite settings are refused."""

from __future__ import annotations

import math

import pytest
import torch

from mlgen.checkpoints.load import load_checkpoint
from mlgen.models.divergence import DivergenceError
from tests.faults.cli import run_cli
from tests.helpers.config import CPU_QUICK, compose_config

VAE_QUICK = ["experiment=digits_vae", "logger=csv", "trainer.enable_progress_bar=false", "callbacks.model_summary=null",
             "trainer=cpu", "model.iwae_samples=4", "model.iwae_chunk=4"]


def test_nan_loss_stops_the_run_at_once_with_the_remedies(tmp_path):
    proc = run_cli("train", [*VAE_QUICK, "model.optimizer.lr=1e4", "trainer.max_epochs=3"], tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert "Traceback" not in out
    err = proc.stderr
    for text in ("training diverged", "train/", "at global step", "model.optimizer.lr=10000.0",
                 "trainer.gradient_clip_val"):
        assert text in err, err
    step = int(err.split("at global step ")[1].split()[0])
    assert 0 < step < 60, err  # the first epoch of digits has 23 steps; 3 epochs would be 69
    for ckpt in (tmp_path / "logs").rglob("*.ckpt"):  # none, or only finite ones
        state = load_checkpoint(str(ckpt))["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), ckpt


def test_a_checkpoint_is_never_written_from_non_finite_weights(tmp_path):
    """The save-time guard: what a GPU run relies on between logging steps."""
    from mlgen.config.instantiate import instantiate_datamodule, instantiate_model
    from mlgen.tasks.common import build_trainer

    cfg = compose_config("train", [*CPU_QUICK, "trainer.max_epochs=1", "test=false"], tmp_path)
    model, datamodule = instantiate_model(cfg.model), instantiate_datamodule(cfg.data)
    trainer = build_trainer(cfg, model)
    trainer.fit(model, datamodule=datamodule)
    good = tmp_path / "good.ckpt"
    trainer.save_checkpoint(good)
    with torch.no_grad():
        next(model.parameters())[0].fill_(math.inf)
    with pytest.raises(DivergenceError, match="a weight is not finite"):
        trainer.save_checkpoint(tmp_path / "bad.ckpt")
    assert not (tmp_path / "bad.ckpt").exists()
    with pytest.raises(DivergenceError):
        trainer.save_checkpoint(good)  # an earlier good file is not replaced either
    assert all(torch.isfinite(v).all() for v in load_checkpoint(str(good))["state_dict"].values()
               if v.is_floating_point())


@pytest.mark.parametrize("override", ["model.optimizer.lr=inf", "model.optimizer.lr=nan",
                                      "model.optimizer.weight_decay=inf", "trainer.gradient_clip_val=inf",
                                      "model.net.dropout=nan"])
def test_non_finite_settings_are_refused_before_training(override, tmp_path):
    proc = run_cli("train", [*CPU_QUICK, "logger=none", override],
                   tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    key = override.split("=")[0]
    assert f"{key}=" in proc.stderr and "finite" in proc.stderr and "Fix" in proc.stderr, proc.stderr
    assert "Epoch" not in proc.stdout + proc.stderr
    assert not list((tmp_path / "logs").rglob("*.ckpt"))
