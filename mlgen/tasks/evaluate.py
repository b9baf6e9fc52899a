"""Evaluation run: rebuild model and data from the config stored in a checkpoint, then test."""

from __future__ import annotations

from pathlib import Path

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from mlgen.callbacks.config_in_checkpoint import CONFIG_KEY
from mlgen.tasks.common import RunResult, build_trainer, finish, metrics_as_floats
from mlgen.utils.checkpoints import load_checkpoint
from mlgen.utils.errors import CheckpointError
from mlgen.utils.instantiate import instantiate_datamodule


def evaluate(cfg: DictConfig) -> RunResult:
    """Test `cfg.ckpt_path` on its own data (overridable with `data.*`), with no other config needed."""
    checkpoint = load_checkpoint(cfg.ckpt_path)
    if CONFIG_KEY not in checkpoint:
        raise CheckpointError(
            f"ckpt_path={cfg.ckpt_path} holds no mlgen config (it was not written by mlgen-train), so the model "
            f"and data can't be rebuilt. Fix: evaluate a checkpoint from an mlgen-train run."
        )
    run_cfg = OmegaConf.create(checkpoint[CONFIG_KEY])
    data_cfg = OmegaConf.merge(run_cfg.data, cfg.get("data") or {})
    datamodule = instantiate_datamodule(data_cfg)
    model_cls = get_class(run_cfg.model._target_)
    model = model_cls.load_from_checkpoint(cfg.ckpt_path, map_location="cpu")
    trainer = build_trainer(cfg)
    try:
        trainer.test(model, datamodule=datamodule, verbose=False)
        metrics = metrics_as_floats(trainer.callback_metrics)
    finally:
        finish(trainer)
    return RunResult(metrics, Path(cfg.paths.output_dir), best_checkpoint=cfg.ckpt_path)
