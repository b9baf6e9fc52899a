"""Training run: seed, build everything from config, fit, test the best checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig

from mlgen.checkpoints.allowlist import trusting_config_targets
from mlgen.checkpoints.config_in_checkpoint import ConfigInCheckpoint
from mlgen.checkpoints.latest import last_checkpoint_in
from mlgen.checkpoints.load import load_checkpoint
from mlgen.config.instantiate import instantiate_datamodule, instantiate_model
from mlgen.errors import ConfigError
from mlgen.tasks.common import (
    build_trainer,
    config_as_dict,
    finish,
    metrics_as_floats,
    without_group_count_warning,
)
from mlgen.tasks.report import RunResult, sample_quality_notes
from mlgen.tasks.resume import config_for_resume
from mlgen.tasks.run_checks import MonitorIsLogged, check_training_config

log = logging.getLogger(__name__)


@trusting_config_targets
def train(cfg: DictConfig) -> RunResult:
    """Run one training job described by a composed `train.yaml` config."""
    if cfg.get("ckpt_path"):  # read now, to fail with a clear message before building anything
        cfg = config_for_resume(cfg, load_checkpoint(cfg.ckpt_path))
    check_training_config(cfg)
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate_datamodule(cfg.data)
    model = instantiate_model(cfg.model)
    checks = MonitorIsLogged({"model.monitor": cfg.model.get("monitor"), "objective": cfg.get("objective")})
    trainer = build_trainer(cfg, model, extra_callbacks=[ConfigInCheckpoint(config_as_dict(cfg)), checks])
    try:
        if cfg.get("train", True):
            with without_group_count_warning(model):
                trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        fit_metrics = metrics_as_floats(trainer.callback_metrics)
        best = _best_checkpoint(trainer)
        test_metrics: dict[str, float] = {}
        if cfg.get("test", True):
            trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False)
            test_metrics = metrics_as_floats(trainer.callback_metrics)
    finally:
        finish(trainer)
    metrics = {**fit_metrics, **test_metrics}
    name, value = _objective(cfg, trainer, metrics)
    notes = sample_quality_notes(model, metrics, datamodule, last_checkpoint_in(cfg.paths.output_dir))
    return RunResult(metrics, Path(cfg.paths.output_dir), name, value, best, notes=notes)


def _best_checkpoint(trainer: pl.Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    path = getattr(callback, "best_model_path", "") if callback else ""
    return path or None


def _objective(cfg: DictConfig, trainer: pl.Trainer, metrics: dict[str, float]) -> tuple[str | None, float | None]:
    """The value a sweeper optimises: the best monitored score when checkpoints track it, else the last value."""
    name = cfg.get("objective")
    if not name:
        return None, None
    callback = trainer.checkpoint_callback
    if callback is not None and getattr(callback, "monitor", None) == name and callback.best_model_score is not None:
        return name, float(callback.best_model_score)
    if name not in metrics:
        if str(name).startswith("val/") and not any(k.startswith("val/") for k in metrics):
            raise ConfigError(  # e.g. a smoke test with trainer.max_steps=1: its checkpoints are written all the same
                f"objective={name!r} was not logged: this run never validated (it stopped at global step "
                f"{trainer.global_step}, epoch {trainer.current_epoch}, before its first validation). Fix: "
                f"objective=null for a run that reports no objective (a smoke test), or let it validate once "
                f"(a whole epoch, or trainer.val_check_interval=<steps>), or an objective it logged: {sorted(metrics)}."
            )
        raise ConfigError(
            f"objective={name!r} was not logged by this run. Fix: set objective to one of {sorted(metrics)}."
        )
    return name, metrics[name]
