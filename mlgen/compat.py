"""The only place that touches private attributes of Lightning and Hydra.

Each function wraps one private attribute that has no public equivalent and says why mlgen needs it.
`tests/unit/test_compat.py` calls every one of them against the installed versions, so an upgrade that
renames or removes one fails there, loudly, rather than somewhere deep in a training run.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl


def attached_trainer(module: pl.LightningModule) -> pl.Trainer | None:
    """The module's trainer, or None outside `fit`/`test` (the public `module.trainer` raises there).

    Models call `sample()` and `noise()` both inside a run and standalone (`mlgen-sample`)."""
    return module._trainer


def loggers_write_this_step(trainer: pl.Trainer) -> bool:
    """Whether the loggers write on the current training step (`trainer.log_every_n_steps`).

    Lightning decides this in its logger connector and has no public property for it; mlgen's
    per-step logging hands values to `self.log` only on those steps (see `MLGenModule.log_train_values`)."""
    return bool(trainer.fast_dev_run or trainer._logger_connector.should_update_logs)


def batches_stepped(trainer: pl.Trainer) -> int:
    """Training batches stepped so far in the run: the step at which Lightning's logger connector writes, and
    the count `log_every_n_steps` divides. Lightning keeps it in its loop (no public property); mlgen's fast
    path writes its per-step values at this step (`MLGenModule.log_train_values`)."""
    return trainer.fit_loop.epoch_loop._batches_that_stepped


def count_stepped_batch(trainer: pl.Trainer) -> None:
    """Count one more stepped batch. mlgen's fast path (`mlgen/models/fast_path.py`) trains several batches in
    one Lightning step, for which Lightning counts one; counting the others keeps log positions, logger steps
    and the count in checkpoints as on the normal path."""
    trainer.fit_loop.epoch_loop._batches_that_stepped += 1


def hpc_checkpoint_path(trainer: pl.Trainer, folder: str) -> str:
    """Lightning's own name for the next `hpc_ckpt_<N>.ckpt` in `folder`, the file its SLURM resume
    logic looks for; mlgen's requeue callback writes exactly that file."""
    return trainer._checkpoint_connector.hpc_save_path(folder)


def processed_training_batches(trainer: pl.Trainer) -> int:
    """Training batches of the current epoch that have run (Lightning's `processed`, not `completed`):
    a checkpoint written in `on_train_batch_end` has trained a batch not yet counted as completed.
    The loop's progress trackers are not a documented API."""
    return trainer.fit_loop.epoch_loop.batch_progress.current.processed


def failed_job_error(job_return: Any) -> BaseException | None:
    """The exception of a failed Hydra job. `JobReturn.return_value` re-raises it instead of returning it,
    and the sweep summary must record it without stopping."""
    return job_return._return_value


def optuna_trial_id(trial: Any) -> int:
    """The storage id of an Optuna trial (`Trial` or `FrozenTrial`). Optuna 2.10 (the newest hydra-optuna-sweeper
    allows) has no public accessor; mlgen's sweeper needs it for heartbeats and a trial's job to open its trial
    with `optuna.trial.Trial(study, id)`, as Optuna's own optimize loop does."""
    return trial._trial_id


def optuna_search_space(overrides: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """hydra-optuna-sweeper's parsing of sweep overrides (`interval(...)`, `choice(...)`, `tag(log, ...)`) into
    Optuna distributions and fixed values. It lives in the plugin's private `_impl` module; mlgen's Optuna
    sweeper parses exactly as the plugin does by calling it."""
    from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides

    return create_params_from_overrides(overrides)
