"""Evaluation run: rebuild model and data from the config stored in a checkpoint, then test."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from pytorch_lightning import Trainer

from mlgen.checkpoints.allowlist import trusting_config_targets
from mlgen.checkpoints.load import load_model
from mlgen.config.checks import require
from mlgen.config.instantiate import instantiate_datamodule
from mlgen.errors import ConfigError
from mlgen.tasks.common import build_trainer, finish, metrics_as_floats
from mlgen.tasks.report import RunResult, sample_quality_notes

SPLITS = {"val": Trainer.validate, "test": Trainer.test}


@trusting_config_targets
def evaluate(cfg: DictConfig) -> RunResult:
    """Test `cfg.ckpt_path` on its own data (overridable with `++data.*`), with no other config needed.

    `split=val` scores the validation split instead, so that inference-time choices (a guidance scale, a
    number of sampling steps) are made without looking at the test split."""
    if OmegaConf.is_missing(cfg, "ckpt_path") or not cfg.ckpt_path:
        raise ConfigError("mlgen-eval needs ckpt_path, the checkpoint to test. Fix: mlgen-eval "
                          "ckpt_path=<run dir>/checkpoints/last.ckpt (or a best epoch_*.ckpt of that folder).")
    split = cfg.get("split", "test")
    require(split in SPLITS, "split", split, "mlgen-eval scores the validation or the test split",
            "split=val to choose sampling options or compare checkpoints, split=test (the default) to report")
    model, run_config = load_model(cfg.ckpt_path)
    sampling = {key: value for key, value in (cfg.get("sampling") or {}).items() if value is not None}
    if sampling:  # a classifier has no sampling; a VAE or GAN refuses options it lacks, naming them
        require(hasattr(model, "configure_sampling"), "sampling", sampling, f"ckpt_path holds a {type(model).__name__}, which does not sample",
                "leave sampling.* unset for it")
        model.configure_sampling("sampling.", **sampling)
    data_cfg = OmegaConf.merge(run_config["data"], cfg.get("data") or {})
    datamodule = instantiate_datamodule(data_cfg)
    trainer = build_trainer(cfg, model)
    try:
        SPLITS[split](trainer, model, datamodule=datamodule, verbose=False)
        metrics = metrics_as_floats(trainer.callback_metrics)
    finally:
        finish(trainer)
    return RunResult(metrics, Path(cfg.paths.output_dir), tested_checkpoint=str(Path(cfg.ckpt_path).resolve()),
                     notes=sample_quality_notes(model, metrics, datamodule, Path(cfg.ckpt_path).resolve()))
