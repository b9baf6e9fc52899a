"""The run's loggers (W&B, CSV, TensorBoard): built from the `logger` group, closed at the end.

Loggers are optional and plural; everything tracker-specific lives in this folder, so another tracker
(MLflow, ...) is one config file and, at most, one branch here.
"""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig

from mlgen.config.instantiate import build_from_config
from mlgen.distributed.run_id import is_rank_zero
from mlgen.errors import ConfigError
from mlgen.tracking.wandb_mode import describe_wandb_mode

log = logging.getLogger(__name__)


def instantiate_loggers(cfg: DictConfig | None) -> list[Any]:
    """Loggers are optional: one that can't be imported (e.g. a broken wandb) is skipped with a warning."""
    loggers = []
    for name, entry in (cfg or {}).items():
        if not entry or "_target_" not in entry:
            continue
        try:
            logger = build_from_config(entry, f"logger.{name}")
        except ConfigError as err:
            if "wandb" in str(entry["_target_"]).lower() and _import_failed("wandb"):
                log.warning("W&B logger skipped: wandb cannot be imported (%s). Training goes on without it.", err)
                continue
            raise
        if name == "wandb" and is_rank_zero():  # once per job, not once per DDP rank
            log.info(describe_wandb_mode(entry.get("mode", "online"), logger.save_dir))
        loggers.append(logger)
    return loggers


def _import_failed(module: str) -> bool:
    try:
        __import__(module)
    except Exception:
        return True
    return False


def finish_loggers(loggers: list[Any], exit_code: int = 0) -> None:
    """Close W&B runs, so the next job of a multirun (or the next arm of mlgen-synth) gets its own;
    a non-zero `exit_code` marks the W&B run failed (a signal, a divergence, a crash)."""
    from pytorch_lightning.loggers import WandbLogger

    if any(isinstance(logger, WandbLogger) for logger in loggers):  # mlgen's own subclass included
        import wandb

        wandb.finish(exit_code=exit_code)
