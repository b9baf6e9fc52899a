"""What every mlgen LightningModule shares: nets and optimisers from config, RNG in checkpoints."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from torch import Tensor, nn
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torchmetrics import Metric, MetricCollection

from mlgen.checkpoints.rng import rng_states, set_rng_states
from mlgen.compat import attached_trainer, batches_stepped, loggers_write_this_step
from mlgen.config.checks import (
    check_choice,
    check_int,
    check_number,
    is_finite_number,
    require,
)
from mlgen.config.instantiate import build_from_config
from mlgen.data.step_batches import StepBatches
from mlgen.errors import ConfigError
from mlgen.models.divergence import (
    DivergenceError,
    all_finite,
    divergence_message,
    first_non_finite,
)
from mlgen.models.fast_path import train_on_batches


class MLGenModule(pl.LightningModule):
    """Base of every mlgen model family. Its arguments are declared here only: a family declares its
    own and forwards these as `**kwargs`, and `save_hyperparameters` (called here) collects the
    arguments of every `__init__` up the class chain, so a checkpoint rebuilds any family.

    Args:
        shape: data shape `[C, H, W]`, interpolated from `${data.shape}`.
        num_classes: number of labels, from `${data.num_classes}`.
        optimizer: config with `_target_` (a torch optimizer class) and its arguments.
        scheduler: optional LR scheduler config with `_target_`; stepped every epoch (by Lightning,
            or by `on_train_epoch_end` under manual optimisation).
        monitor: metric that checkpoints, early stopping, sweeps and ReduceLROnPlateau use; each
            family's config (`conf/model/*.yaml`) sets its own; null: none.
        monitor_mode: `min` or `max`.
        compile: `torch.compile` each net (in place, so checkpoints load with or without it).
        channels_last: channels-last memory format for conv nets and their image inputs
            (faster convolutions on recent GPUs, especially with bf16).
        batches_per_step: batches trained per Lightning training step, each with its own optimizer step
            (`mlgen.models.fast_path`); the model configs read it from `${data.batches_per_step}`, which makes
            the loader group its batches. 1: Lightning's own loop, as before.
    """

    # True when a backward pass may leave some parameters without gradients (GANs): the trainer then
    # builds DDP with find_unused_parameters, which Lightning offers as a strategy name.
    ddp_find_unused_parameters = False
    # True for a family whose `train_batch` steps its own optimizers (GANs); else Lightning (or the fast
    # path, under manual optimisation) steps the one optimizer on the loss `train_batch` returns.
    manual_updates: ClassVar[bool] = False

    def __init__(
        self,
        shape: Sequence[int],
        num_classes: int,
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None = None,
        monitor: str | None = "val/loss",
        monitor_mode: str = "min",
        compile: bool = False,
        channels_last: bool = False,
        batches_per_step: int = 1,
    ) -> None:
        super().__init__()
        check_choice("model.monitor_mode", monitor_mode, ("min", "max"))
        check_int("model.batches_per_step", batches_per_step, low=1, example=8)
        check_optimizer_config(optimizer, "model.optimizer")
        check_scheduler_config(scheduler, "model.scheduler")
        self.save_hyperparameters(logger=False)  # the run logs the whole composed config instead
        self.compile_nets, self.channels_last = bool(compile), bool(channels_last)
        self._train_sums: dict[str, list[Any]] = {}  # name -> [weighted sum, count]
        self._restored_train_sums: dict[str, Any] | None = None  # from a mid-epoch checkpoint
        self._eval_sums: dict[str, list[Any]] = {}  # this validation/test epoch's, as _train_sums
        self.shape = tuple(int(s) for s in shape)
        self.num_classes = int(num_classes)
        self.batches_per_step = batches_per_step
        self.automatic_optimization = not (self.manual_updates or batches_per_step > 1)
        # the fast path clips as the Trainer would, with `trainer.gradient_clip_val`/`_algorithm`, which
        # `mlgen.tasks.common.build_trainer` moves here (Lightning refuses them under manual optimisation)
        self.gradient_clipping: tuple[float | None, str | None] = (None, None)
        self.writes_own_step_logs = False  # set by the fast path inside a group of batches

    def build_net(self, cfg: Mapping[str, Any], key: str = "model.net", **kwargs: Any) -> torch.nn.Module:
        return build_from_config(cfg, key, **kwargs)

    def make_optimizer(self, cfg: Mapping[str, Any], params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
        return instantiate(cfg, params=params)

    def optimizer_config(self, optimizer: Mapping[str, Any], scheduler: Mapping[str, Any] | None,
                         params: Iterable[torch.nn.Parameter]) -> dict[str, Any]:
        """One optimizer and its optional epoch-interval LR scheduler, as `configure_optimizers` returns them."""
        built = self.make_optimizer(optimizer, params)
        if not scheduler:
            return {"optimizer": built}
        config = {"scheduler": instantiate(scheduler, optimizer=built), "interval": "epoch"}
        if self.automatic_optimization:  # under manual optimisation Lightning ignores (and warns about) a monitor
            config["monitor"] = self.hparams.monitor
        return {"optimizer": built, "lr_scheduler": config}

    def configure_optimizers(self) -> Any:
        return self.optimizer_config(self.hparams.optimizer, self.hparams.get("scheduler"), self.parameters())

    # --- training ------------------------------------------------------------------------
    def train_batch(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor | None:
        """The family's training on one batch: its loss (logged with `log_train_values`), or None for a
        family that steps its own optimizers (`manual_updates`)."""
        raise NotImplementedError

    def training_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        """Lightning's automatic optimisation steps on `train_batch`'s loss; otherwise (GANs, or the fast path
        with several batches per step) `mlgen.models.fast_path` runs the updates."""
        if self.automatic_optimization:
            require(not isinstance(batch, StepBatches), "model.batches_per_step", self.batches_per_step,
                    "the loader groups several batches per training step (data.batches_per_step > 1) and this model "
                    "trains one batch per step", "set model.batches_per_step=${data.batches_per_step} (as "
                    "conf/model/*.yaml do), or data.batches_per_step=1")
            return self.train_batch(batch, batch_idx)
        train_on_batches(self, batch, batch_idx)
        return None

    def on_weights_updated(self) -> None:
        """Called after every optimizer step of a family Lightning optimises, on either path (EMA updates)."""

    def step_lr_schedulers(self) -> None:
        """Step every LR scheduler once, as Lightning steps epoch-interval schedulers under automatic
        optimisation (which it leaves to the module under manual optimisation); ReduceLROnPlateau gets
        the monitored metric."""
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers] if schedulers else []:
            if isinstance(scheduler, ReduceLROnPlateau):
                scheduler.step(self._monitored_value())
            else:
                scheduler.step()

    def _monitored_value(self) -> Tensor:
        monitor = self.hparams.monitor
        value = self.trainer.callback_metrics.get(monitor) if monitor else None
        if value is None:
            raise ConfigError(
                f"model.monitor={monitor} is invalid for a ReduceLROnPlateau scheduler: the metric was not logged "
                f"this epoch (logged: {sorted(self.trainer.callback_metrics)}). Fix: monitor a metric logged every "
                "epoch (for GANs one needs model.metrics.feature_ckpt, e.g. model.monitor=val/fid_clf), or use "
                "another scheduler."
            )
        return value

    def log_train_values(self, values: Mapping[str, Tensor | float], batch_size: int) -> None:
        """Log per-step training values without a per-step cost.

        Each `self.log` call costs Lightning a fraction of a millisecond, a sizeable share of a small
        model's step. Here a value only joins a running sum on its device each step; it is handed to
        Lightning as `<name>_step` on the steps the loggers write (`trainer.log_every_n_steps`), and
        its mean over the epoch as `<name>_epoch` (and `<name>` for monitors), synced across ranks,
        at the epoch's end: the same names and numbers as `self.log(on_step=True, on_epoch=True)`.
        On the fast path Lightning writes its loggers once per group of batches, so `<name>_step` values
        are written to the loggers here, at the step Lightning would have written them.
        """
        self._add_to_sums(self._train_sums, values, batch_size)
        writes = self._loggers_write_this_step()
        if writes or self.device.type == "cpu":  # no per-step device sync (mlgen/models/divergence.py)
            self._stop_if_diverged(values)
        if writes:
            step_values = {f"{name}_step": value for name, value in values.items()}
            if self.writes_own_step_logs:  # Lightning writes its loggers once per group: at this batch's step here
                self._write_to_loggers(step_values)
            self.log_dict(step_values, on_step=True, on_epoch=False, prog_bar=True, batch_size=batch_size,
                          logger=not self.writes_own_step_logs)

    def _add_to_sums(self, sums: dict[str, list[Any]], values: Mapping[str, Tensor | float], batch_size: int) -> None:
        """Add each value, weighted by the batch size, to its running sum on the device: no host sync."""
        for name, value in values.items():
            value = value.detach() if isinstance(value, Tensor) else torch.tensor(float(value), device=self.device)
            running = sums.get(name)
            if running is None:  # float32 sums, also under bf16 autocast
                sums[name] = [value.float() * batch_size, batch_size]
            else:  # one in-place op per value and step
                running[0].add_(value, alpha=batch_size)
                running[1] += batch_size

    def log_eval_values(self, values: Mapping[str, Tensor | float], batch_size: int) -> None:
        """Log per-batch validation/test values as `self.log(on_epoch=True, sync_dist=True)` would, at one
        `self.log` call per value and epoch instead of per batch (issue #17: a call costs Lightning about
        0.5 ms, which on a small model's short validation adds up to percents of the epoch).

        The values join running sums on their device; `on_validation_epoch_end` / `on_test_epoch_end` log
        each mean with the epoch's sample count as its batch size, so Lightning's DDP sync (sum of weighted
        values over sum of counts) gives the mean over every rank's samples, as before.
        """
        self._add_to_sums(self._eval_sums, values, batch_size)

    def _log_eval_means(self) -> None:
        sums, self._eval_sums = self._eval_sums, {}
        for name, (total, count) in sums.items():
            self.log(name, total / count, batch_size=count, sync_dist=True, prog_bar=True)

    def eval_epoch_start(self, split: str) -> None:
        """Start of a validation (`split="val"`) or test epoch; families extend it with their own state."""
        self._eval_sums = {}  # what a validation interrupted by a signal may have left

    def eval_epoch_end(self, split: str) -> None:
        """End of a validation or test epoch: log its values (families add their epoch-level metrics)."""
        self._log_eval_means()

    def on_validation_epoch_start(self) -> None:
        self.eval_epoch_start("val")

    def on_validation_epoch_end(self) -> None:
        self.eval_epoch_end("val")

    def on_test_epoch_start(self) -> None:
        self.eval_epoch_start("test")

    def on_test_epoch_end(self) -> None:
        self.eval_epoch_end("test")

    def _write_to_loggers(self, metrics: Mapping[str, Tensor | float]) -> None:
        """Write per-step values at the step and with the `epoch` entry Lightning's logger connector would use."""
        scalars: dict[str, float] = {name: float(torch.as_tensor(value).detach()) for name, value in metrics.items()}
        scalars["epoch"] = self.current_epoch
        step = batches_stepped(self.trainer)
        for logger in self.loggers:
            logger.log_metrics(scalars, step=step)
            logger.save()

    def _stop_if_diverged(self, values: Mapping[str, Tensor | float]) -> None:
        name = first_non_finite(values)
        if name is not None:
            self._raise_diverged(name, values[name])

    def _raise_diverged(self, what: str, value: Tensor | float | None) -> None:
        raise DivergenceError(divergence_message(what, value, self.global_step, self.current_epoch,
                                                 self.hparams.optimizer.get("lr"), not self.manual_updates))

    def _loggers_write_this_step(self) -> bool:
        trainer = attached_trainer(self)
        return trainer is not None and loggers_write_this_step(trainer)

    def on_train_start(self) -> None:
        """Resuming inside the epoch a checkpoint was written in (Slurm preemption), carry on from its
        running sums, so that the epoch's means cover the batches before the interruption too."""
        restored, self._restored_train_sums = self._restored_train_sums, None
        if restored and restored["epoch"] == self.current_epoch:
            for name, (totals, counts) in restored["sums"].items():
                total, count = _rank_share(totals, counts, self.global_rank, self.trainer.world_size)
                self._train_sums[name] = [total.to(self.device), count]

    def on_train_epoch_end(self) -> None:
        means = {name: total / count for name, (total, count) in self._train_sums.items()}
        self._train_sums.clear()
        self.log_dict({f"{name}_epoch": mean for name, mean in means.items()}, sync_dist=True, batch_size=1)
        self.log_dict(means, sync_dist=True, logger=False, batch_size=1, prog_bar=True)  # the epoch line shows the means
        if not self.automatic_optimization:
            # Lightning steps epoch-interval schedulers only under automatic optimisation. Here they step
            # before the epoch-end checkpoint is written (Lightning's checkpoint callbacks run after this
            # hook), so a checkpoint holds the next epoch's rates and a resume continues the schedule.
            self.step_lr_schedulers()

    def configure_model(self) -> None:
        """Lightning calls this once the module is on its device, before fit, test or predict."""
        for net in self.nets():
            if self.channels_last:
                net.to(memory_format=torch.channels_last)
                # a hook, not on_after_batch_transfer: that would silence the datamodule's own hook
                net.register_forward_pre_hook(_channels_last_input)
            if self.compile_nets:
                net.compile()  # nn.Module.compile keeps state_dict keys, unlike torch.compile(net)

    def metrics_held_back_in_sanity_check(self) -> set[str]:
        """Validation metrics this module logs only after Lightning's sanity check (none here)."""
        return set()

    def nets(self) -> list[nn.Module]:
        """The trainable nets: every child module except metric containers."""
        return [m for m in self.children() if not isinstance(m, (Metric, MetricCollection, nn.ModuleDict))]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning calls this before any checkpoint (best, last, hpc, signal) is written: never one of NaNs
        if not all_finite(self.parameters()):
            self._raise_diverged("a weight", None)
        sums = {name: total for name, (total, _) in self._train_sums.items()}
        self._stop_if_diverged(sums)
        checkpoint["mlgen_rng_states"] = rng_states()
        if self._train_sums:  # written inside an epoch (after its end, they are cleared)
            checkpoint["mlgen_train_sums"] = {"epoch": self.current_epoch, "sums": self._sums_of_every_rank()}

    def _sums_of_every_rank(self) -> dict[str, list[Any]]:
        """name -> [the running sum of each rank, the count of each rank]. Each rank's sums cover only its own
        shard and only rank 0 writes the checkpoint, so they are gathered (every rank saves: Lightning's
        `save_checkpoint` is collective)."""
        names = sorted(self._train_sums)
        totals = torch.stack([self._train_sums[n][0].detach().float().reshape(()) for n in names])
        counts = torch.tensor([float(self._train_sums[n][1]) for n in names], device=totals.device)
        gathered = self.all_gather(torch.stack([totals, counts])).reshape(-1, 2, len(names)).cpu()  # [ranks, 2, names]
        return {n: [gathered[:, 0, i].clone(), [int(c) for c in gathered[:, 1, i].tolist()]] for i, n in enumerate(names)}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "mlgen_rng_states" in checkpoint:
            set_rng_states(checkpoint["mlgen_rng_states"])
        self._restored_train_sums = checkpoint.get("mlgen_train_sums")


def _channels_last_input(net: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    x = args[0]
    if isinstance(x, torch.Tensor) and x.dim() == 4:
        return (x.contiguous(memory_format=torch.channels_last), *args[1:])
    return args


def check_scheduler_config(cfg: Mapping[str, Any] | None, key: str) -> None:
    """Build the LR scheduler once on a dummy optimizer, so a bad option fails at construction with
    the config key named; null (or empty) means no scheduler."""
    if not cfg:
        return
    require(isinstance(cfg, Mapping) and "_target_" in cfg, key, cfg,
            "it needs a _target_ such as torch.optim.lr_scheduler.StepLR", f"e.g. {key}._target_=torch.optim.lr_scheduler.StepLR, or {key}=null")
    try:
        instantiate(cfg, optimizer=torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0))
    except Exception as err:
        cause = err.__cause__ or err
        raise ConfigError(f"{key} is invalid: {cause}. Fix: correct that value under {key}, or set {key}=null.") from None


def check_optimizer_config(cfg: Mapping[str, Any], key: str) -> None:
    """Build the optimizer once on a dummy parameter so torch's own checks (lr >= 0, betas in
    [0, 1), ...) fail at construction time with the config key named, not mid-`fit`."""
    if not isinstance(cfg, Mapping) or "_target_" not in cfg:
        raise ConfigError(f"{key}={cfg!r} is invalid: it needs a _target_ such as torch.optim.Adam. Fix: e.g. {key}._target_=torch.optim.Adam.")
    lr = cfg.get("lr")
    require(lr is None or (is_finite_number(lr) and lr > 0), f"{key}.lr", lr,
            "the learning rate must be a positive finite number", f"set e.g. {key}.lr=1e-3")
    for name, value in cfg.items():  # inf and nan pass torch's own range checks (inf >= 0)
        if isinstance(value, float):
            check_number(f"{key}.{name}", value)
    try:
        instantiate(cfg, params=[torch.zeros(1, requires_grad=True)])
    except Exception as err:
        cause = err.__cause__ or err
        raise ConfigError(f"{key} is invalid: {cause}. Fix: correct that value under {key}.") from None


def _rank_share(totals: Tensor, counts: Any, rank: int, world_size: int) -> tuple[Tensor, float]:
    """This rank's running sum and count from a mid-epoch checkpoint: its own where the checkpoint was
    written by as many ranks; else an equal share of the total, which keeps the epoch's mean over all ranks."""
    totals = torch.as_tensor(totals, dtype=torch.float32).reshape(-1)
    counts = [counts] if isinstance(counts, (int, float)) else list(counts)  # one process wrote a scalar sum
    if len(counts) == world_size == len(totals):
        return totals[rank].clone(), counts[rank]
    return totals.sum() / world_size, sum(counts) / world_size
