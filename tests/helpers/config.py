"""Compose mlgen's Hydra configs in-process, as `mlgen-train` would, for tests."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_module
from hydra.core.hydra_config import HydraConfig
from hydra_plugins import mlgen_sweeper
from omegaconf import DictConfig, open_dict

from mlgen import resolvers  # noqa: F401

mlgen_sweeper.register()  # hydra/sweeper=mlgen_optuna, as mlgen.cli registers it (editable installs hide it from Hydra's scan)


def compose_config(config_name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """The composed config with `paths.output_dir` pointing at `output_dir` (Hydra is not run,
    so HydraConfig is set by hand, as the run would set it)."""
    with initialize_config_module("mlgen.conf", version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    return cfg


# Fast, quiet CPU settings most integration tests start from.
CPU_QUICK = [
    "trainer=cpu",
    "logger=csv",
    "trainer.enable_progress_bar=false",
    "callbacks.model_summary=null",
]
