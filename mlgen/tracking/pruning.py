"""Optuna pruning for a trial of a sweep: report the monitored metric after each validation epoch, stop
the trial when the study's pruner says so (`hparams_search/pruning=median`, off by default).

Written by hand: optuna 2.10's `PyTorchLightningPruningCallback` (the last Optuna hydra-optuna-sweeper
allows) reports the sanity check's value as epoch 0 under Lightning 2 (it tests `running_sanity_check`,
which Lightning removed), so the real first epoch is dropped, and it does not agree across DDP ranks.

The trial is the job's own: mlgen's sweeper makes the job number the trial number, and the job opens the
study from the sweeper's storage. The pruner belongs to the job, not the study: Optuna does not store it.
A pruned trial raises `optuna.TrialPruned`, which the sweeper tells Optuna as PRUNED and the sweep summary
lists as pruned; its run dir keeps the checkpoints and logs up to the epoch it stopped at.
"""

from __future__ import annotations

from typing import Any

import optuna
import pytorch_lightning as pl

from mlgen.compat import optuna_trial_id
from mlgen.errors import ConfigError


class OptunaPruning(pl.Callback):
    """Args:
    monitor: the metric reported to the trial (the sweep's objective).
    storage: the sweeper's storage URL (the study must live in a database the job can open).
    study_name: the sweeper's study name.
    trial_number: the trial this job runs (`hydra.job.num` under `hydra/sweeper=mlgen_optuna`).
    pruner: an Optuna pruner (e.g. optuna.pruners.MedianPruner), compared across the study's trials.
    """

    def __init__(self, monitor: str, storage: Any, study_name: str | None, trial_number: int,
                 pruner: optuna.pruners.BasePruner) -> None:
        if not storage or not study_name:
            raise ConfigError(
                f"callbacks.optuna_pruning needs the sweep's study in a database (hydra.sweeper.storage={storage}, "
                f"hydra.sweeper.study_name={study_name}). Fix: use it in an Optuna sweep with a storage, e.g. "
                f"`mlgen-train hparams_search=classifier_optuna_pruned`."
            )
        self.monitor = monitor
        self.storage = storage
        self.study_name = study_name
        self.trial_number = int(trial_number)
        self.pruner = pruner
        self.trial: optuna.trial.Trial | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit" and trainer.is_global_zero:
            self.trial = self.open_trial()

    def open_trial(self) -> optuna.trial.Trial:
        study = optuna.load_study(study_name=self.study_name, storage=self.storage, pruner=self.pruner)
        running = {t.number: t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))}
        if self.trial_number not in running:
            raise ConfigError(
                f"callbacks.optuna_pruning.trial_number={self.trial_number} is not a running trial of the study "
                f"{self.study_name!r}, so this job was not started by mlgen's Optuna sweeper for it. Fix: prune only "
                f"in sweeps with hydra/sweeper=mlgen_optuna (the hparams_search=*_optuna configs)."
            )
        return optuna.trial.Trial(study, optuna_trial_id(running[self.trial_number]))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        epoch = trainer.current_epoch
        value, prune = None, False
        if trainer.is_global_zero:
            if self.monitor not in trainer.callback_metrics:
                raise ConfigError(
                    f"callbacks.optuna_pruning.monitor={self.monitor} was not logged in validation (logged: "
                    f"{sorted(trainer.callback_metrics)}). Fix: set objective to a validation metric."
                )
            value = float(trainer.callback_metrics[self.monitor])
            self.trial.report(value, step=epoch)
            prune = self.trial.should_prune()
        if trainer.strategy.broadcast(prune):  # every rank stops at the same epoch
            error = optuna.TrialPruned(f"Trial {self.trial_number} pruned at epoch {epoch}: {self.monitor} = {value}")
            error.epoch, error.value = epoch, value  # read by the sweep summary; survive pickling to a launcher
            raise error
