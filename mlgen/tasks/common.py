"""Pieces shared by training and evaluation runs: the trainer, its loggers, the end of a run."""

from __future__ import annotations

import logging
import signal
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.seed import reset_seed
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ProgressBar

from mlgen.checkpoints.atomic_io import AtomicCheckpointIO
from mlgen.config.checks import require
from mlgen.config.instantiate import build_from_config, instantiate_group
from mlgen.distributed.hydra_ddp import pin_ddp_children_to_this_job, release_ddp_job
from mlgen.distributed.interrupt import SaveOnTermination
from mlgen.distributed.slurm import check_trainer_matches_slurm, in_slurm_job
from mlgen.distributed.slurm_trainer import slurm_trainer_parts
from mlgen.errors import USER_ERROR_EXIT_CODE, ConfigError, MLGenError
from mlgen.tasks.gpu_probes import hide_absent_gpus
from mlgen.tasks.report import announce_run_dir, quiet_dependency_noise
from mlgen.tracking.loggers import finish_loggers, instantiate_loggers

log = logging.getLogger(__name__)


def config_as_dict(cfg: DictConfig) -> dict[str, Any]:
    """The resolved run config without Hydra's own node, as plain containers."""
    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("hydra", None)
    return container


# Lightning's registered DDP strategies that also look for parameters a backward pass did not reach.
_FIND_UNUSED = {"ddp": "ddp_find_unused_parameters_true", "ddp_spawn": "ddp_spawn_find_unused_parameters_true"}


def build_trainer(cfg: DictConfig, model: pl.LightningModule | None = None,
                  extra_callbacks: list[pl.Callback] | None = None) -> pl.Trainer:
    """Trainer from `cfg.trainer` with the callbacks and loggers of their groups; logs the full config.
    A model whose class sets `ddp_find_unused_parameters` gets Lightning's DDP strategy of that name."""
    quiet_dependency_noise()
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} asks for a GPU, but there is no GPU here (torch.cuda.is_available() "
            f"is False). Fix: use trainer=cpu (or trainer.accelerator=cpu), or run on a machine with a GPU."
        )
    hide_absent_gpus()  # no NVML probe at every optimizer step of a CPU run (mlgen/tasks/gpu_probes.py)
    announce_run_dir(cfg.paths.output_dir)
    callbacks = instantiate_group(cfg.get("callbacks"), "callbacks") + list(extra_callbacks or [])
    if not cfg.trainer.get("enable_progress_bar", True):  # the switch wins over callbacks.progress_bar
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    loggers = instantiate_loggers(cfg.get("logger"))
    callbacks.append(SaveOnTermination())  # SIGTERM / Ctrl-C: last.ckpt at the next step, exit 143 / 130
    trainer_args: dict[str, Any] = {}
    if in_slurm_job():
        trainer_args, slurm_callbacks = slurm_trainer_parts()
        callbacks += slurm_callbacks
    trainer_args["plugins"] = [*trainer_args.get("plugins", []), AtomicCheckpointIO()]  # no partial checkpoints
    trainer_args.update(fast_path_trainer_args(cfg, model))
    strategy = cfg.trainer.get("strategy")
    if getattr(model, "ddp_find_unused_parameters", False) and strategy in _FIND_UNUSED:
        trainer_args["strategy"] = _FIND_UNUSED[strategy]
    trainer = build_from_config(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False, **trainer_args)
    check_trainer_matches_slurm(trainer.num_devices, trainer.num_nodes)  # before any logger starts a run
    pin_ddp_children_to_this_job()  # Lightning's DDP children re-run the command line
    for logger in trainer.loggers:
        logger.log_hyperparams(config_as_dict(cfg))
    # Lightning's DDP re-seeds every rank at set-up, after the model was built; doing the same with one
    # process makes 1 and N processes start training from the same random state (same noise, masks).
    reset_seed()
    return trainer


def fast_path_trainer_args(cfg: DictConfig, model: pl.LightningModule | None) -> dict[str, Any]:
    """For a model on the fast path (several batches per Lightning step, `mlgen/models/fast_path.py`): the
    module clips gradients itself with `trainer.gradient_clip_val`/`_algorithm`, which the Trainer then must
    not get (Lightning refuses them under manual optimisation); gradient accumulation is refused."""
    if model is None or getattr(model, "batches_per_step", 1) == 1 or model.manual_updates:
        return {}
    accumulate = cfg.trainer.get("accumulate_grad_batches", 1)
    require(accumulate == 1, "trainer.accumulate_grad_batches", accumulate,
            f"it can't be combined with data.batches_per_step={model.batches_per_step}, which runs an optimizer "
            "step per batch", "set data.batches_per_step=1 to accumulate gradients, or trainer.accumulate_grad_batches=1")
    model.gradient_clipping = (cfg.trainer.get("gradient_clip_val"), cfg.trainer.get("gradient_clip_algorithm"))
    return {"gradient_clip_val": None, "gradient_clip_algorithm": None}


@contextmanager
def without_group_count_warning(model: pl.LightningModule) -> Iterator[None]:
    """On the fast path Lightning counts a group of `batches_per_step` batches as one training batch, so an
    epoch of 4 groups of 8 batches drew its warning that "the number of training batches (4) is smaller than
    the logging interval" `log_every_n_steps=10`, and to lower it, though mlgen logs per batch
    (`MLGenModule.log_train_values`) and such a run writes a row every 10 batches. Dropped for fitting such a
    model only; one batch per step keeps the warning."""
    with warnings.catch_warnings():
        if getattr(model, "batches_per_step", 1) > 1:
            warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than the logging interval")
        yield


def metrics_as_floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in sorted(metrics.items()) if isinstance(v, (int, float, torch.Tensor)) and torch.as_tensor(v).numel() == 1}


def finish(trainer: pl.Trainer) -> None:
    """Close W&B runs (so the next job of a multirun gets its own) with the exit code the process will
    have, so W&B records a stopped or failed run as such; and the process group (a lingering gloo/NCCL
    group sometimes aborts the interpreter at exit). Call it in a `finally:` block."""
    finish_loggers(trainer.loggers, exit_code=_exit_code(sys.exc_info()[1]))
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    release_ddp_job()  # the next job of a multirun launches its own DDP ranks


def _exit_code(err: BaseException | None) -> int:
    """The exit code `err`, on its way out of a task, gives the process (see mlgen/errors.py)."""
    if err is None:
        return 0
    if isinstance(err, SystemExit):
        return err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
    if isinstance(err, KeyboardInterrupt):
        return 128 + signal.SIGINT
    return USER_ERROR_EXIT_CODE if isinstance(err, MLGenError) else 1
