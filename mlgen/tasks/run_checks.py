"""Checks of a training run's config that need the whole config (not one constructor's arguments), made
before any training, so a run that cannot produce what was asked fails in seconds, not after an epoch."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, ListConfig

from mlgen.config.checks import check_number, is_int, require
from mlgen.errors import ConfigError


def check_training_config(cfg: DictConfig) -> None:
    """`seed`, `trainer.max_epochs`, `train`/`test`, and a validation split for a `val/` monitor."""
    seed = cfg.get("seed")
    require(seed is None or (is_int(seed) and seed >= 0), "seed", seed, "it must be an integer >= 0 or null",
            "set e.g. seed=42 (seed=null draws a random one)")
    train, test = bool(cfg.get("train", True)), bool(cfg.get("test", True))
    require(train or test, "train=false test", False, "the run would neither train nor test",
            "drop train=false to train, or drop test=false with ckpt_path=<checkpoint> to test one "
            "(or use mlgen-eval ckpt_path=<checkpoint>)")
    if train:
        max_epochs = cfg.trainer.get("max_epochs")
        require(max_epochs is None or (is_int(max_epochs) and (max_epochs >= 1 or max_epochs == -1)),
                "trainer.max_epochs", max_epochs, "it must be an integer >= 1 (or -1: until trainer.max_steps)",
                "set e.g. trainer.max_epochs=10 (train=false ckpt_path=<checkpoint> only tests)")
        max_steps = cfg.trainer.get("max_steps")
        require(max_steps is None or (is_int(max_steps) and (max_steps >= 1 or max_steps == -1)),
                "trainer.max_steps", max_steps, "it must be an integer >= 1, or -1 for no limit",
                "set e.g. trainer.max_steps=1000, or trainer.max_steps=-1")
    for group in ("model", "data", "trainer"):  # inf and nan pass most range checks by accident (inf > 0)
        _check_finite(cfg.get(group), group)
    monitor = cfg.model.get("monitor")
    val_fraction = cfg.data.get("val_fraction")
    if monitor and str(monitor).startswith("val/") and val_fraction == 0:
        raise ConfigError(
            f"data.val_fraction=0 leaves no validation split, but model.monitor={monitor} (used for the best "
            f"checkpoint, early stopping and the sweep objective) is a validation metric. Fix: keep a "
            f"validation split (e.g. data.val_fraction=0.1), or monitor a training metric (e.g. "
            f"model.monitor=train/loss model.monitor_mode=min).")


def _check_finite(node: Any, key: str) -> None:
    if isinstance(node, float):
        check_number(key, node)
    elif isinstance(node, (DictConfig, ListConfig)):
        items = node.items() if isinstance(node, DictConfig) else enumerate(node)
        for name, value in items:
            _check_finite(value, f"{key}.{name}" if isinstance(node, DictConfig) else f"{key}[{name}]")


class MonitorIsLogged(pl.Callback):
    """`model.monitor` and `objective` must name metrics that validation logs, when they name a `val/` one.
    Lightning's ModelCheckpoint finds out only at the end of the first epoch, with a traceback, and the
    objective only after the whole run; this checks at the end of the sanity-check validation (a few
    batches before training), else at the first validation, before any checkpoint."""

    def __init__(self, names: dict[str, str | None]) -> None:
        self.names = {key: name for key, name in names.items() if name and str(name).startswith("val/")}

    def on_sanity_check_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        held_back = getattr(pl_module, "metrics_held_back_in_sanity_check", set)()  # e.g. FID: checked later
        self._check(trainer, skip=held_back)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:  # ModelCheckpoint's own hook runs after this one (Lightning puts it last)
            self._check(trainer)

    def _check(self, trainer: pl.Trainer, skip: set[str] = frozenset()) -> None:
        for key, name in self.names.items():
            if name not in trainer.callback_metrics and name not in skip:
                logged = sorted(k for k in trainer.callback_metrics if k.startswith("val/"))
                raise ConfigError(
                    f"{key}={name} is invalid: validation does not log it (it logs {logged}). Fix: set {key} to one "
                    f"of those" + (" (with model.monitor_mode=min or max to match), or model.monitor=null to keep "
                                   "only the last checkpoint." if key == "model.monitor" else "."))
