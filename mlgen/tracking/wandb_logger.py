"""Lightning's WandbLogger with the monitoring switches mlgen's config exposes.

Adds to `pytorch_lightning.loggers.WandbLogger` only what it has no argument for:
- `watch`: gradient/parameter histograms (`wandb.watch`) switched on from config
  (`logger.wandb.watch=true`); Lightning has no config hook for it, so it is started from
  `log_graph`, which the Trainer calls once with the module at the start of fit.
- `sweep_job_type`: the W&B job type of trials of a Hydra multirun or a W&B sweep agent, so
  sweep trials can be told apart from single runs in the W&B UI.
Every argument is explicit so a misspelt `logger.wandb.*` option is rejected by name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_only
from torch import nn

from mlgen.checkpoints.latest import LatestCheckpoint
from mlgen.errors import ConfigError
from mlgen.tracking.wandb_mode import has_credentials

_WATCH_LOG = ("gradients", "parameters", "all")


def in_sweep() -> bool:
    """True inside a Hydra multirun job or a run started by `wandb agent`."""
    if os.environ.get("WANDB_SWEEP_ID"):
        return True
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


class MLGenWandbLogger(WandbLogger):
    """Args (besides WandbLogger's and wandb.init's own):
    watch: log histograms of gradients and/or parameters (`wandb.watch`).
    watch_log: what `watch` logs: gradients, parameters or all.
    watch_log_freq: log the histograms every N training steps.
    sweep_job_type: job type used instead of `job_type` inside a sweep; null keeps `job_type`.
    """

    def __init__(
        self,
        name: str | None = None,
        save_dir: str = ".",
        version: str | None = None,
        id: str | None = None,
        project: str | None = None,
        entity: str | None = None,
        group: str | None = None,
        job_type: str | None = None,
        sweep_job_type: str | None = "sweep",
        tags: list[str] | None = None,
        notes: str | None = None,
        mode: str | None = None,
        resume: str | bool | None = None,
        log_model: Literal["all"] | bool = False,
        checkpoint_name: str | None = None,
        prefix: str = "",
        watch: bool = False,
        watch_log: str = "all",
        watch_log_freq: int = 100,
    ) -> None:
        # WandbLogger imports wandb only when the run starts; importing it here makes a broken or
        # missing install fail at construction, where mlgen skips the logger and trains on.
        import wandb  # noqa: F401

        if watch_log not in _WATCH_LOG:
            raise ConfigError(
                f"logger.wandb.watch_log={watch_log!r} is invalid: it must be one of {', '.join(_WATCH_LOG)}. "
                f"Fix: logger.wandb.watch_log=all."
            )
        if not isinstance(watch_log_freq, int) or watch_log_freq < 1:
            raise ConfigError(
                f"logger.wandb.watch_log_freq={watch_log_freq!r} is invalid: it must be an integer >= 1 "
                f"(training steps between histograms). Fix: logger.wandb.watch_log_freq=100."
            )
        if mode == "online" and not has_credentials():
            raise ConfigError(
                "logger.wandb.mode=online (WANDB_MODE=online) needs W&B credentials, and none were found "
                "(no WANDB_API_KEY, no netrc entry for the W&B host). Fix: run `wandb login` once (or export "
                "WANDB_API_KEY), or train offline with WANDB_MODE=offline and upload later with `wandb sync`, "
                "or use logger=csv."
            )
        if sweep_job_type and in_sweep():
            job_type = sweep_job_type
        init_kwargs: dict[str, Any] = {"entity": entity, "group": group, "job_type": job_type, "tags": list(tags or []),
                                       "notes": notes, "mode": mode, "resume": resume}
        super().__init__(
            name=name, save_dir=save_dir, version=version, id=id, project=project, log_model=log_model,
            checkpoint_name=checkpoint_name, prefix=prefix,
            **{k: v for k, v in init_kwargs.items() if v is not None},
        )
        self.metrics_prefix = prefix
        self._watch = (watch_log, watch_log_freq) if watch else None
        self._watched: set[int] = set()

    def log_graph(self, model: nn.Module, input_array: Any = None) -> None:
        """Start `wandb.watch` on the module once (the Trainer calls this at the start of fit and test)."""
        if self._watch is None or id(model) in self._watched:
            return
        log, log_freq = self._watch
        self.watch(model, log=log, log_freq=log_freq, log_graph=False)
        self._watched.add(id(model))


    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Rows at W&B step = the trainer's step (Lightning lets W&B count calls from 0 in each process):
        a requeued Slurm job continues the same run offline, and on `wandb sync` only rows whose step
        increases are kept, so its second attempt must go on at the checkpoint's step, not at 0.
        Rows of one step (a training step, the epoch's validation) become one W&B row."""
        if step is None:
            super().log_metrics(metrics, step)
            return
        if self.metrics_prefix:
            metrics = {f"{self.metrics_prefix}{self.LOGGER_JOIN_CHAR}{k}": v for k, v in metrics.items()}
        self.experiment.log({**metrics, "trainer/global_step": step}, step=step)

    def after_save_checkpoint(self, checkpoint_callback: ModelCheckpoint) -> None:
        """Model artifacts come from the monitored checkpoint (aliases best, latest); the
        `LatestCheckpoint` beside it only keeps last.ckpt for resuming and would add a second 'best'."""
        if not isinstance(checkpoint_callback, LatestCheckpoint):
            super().after_save_checkpoint(checkpoint_callback)
