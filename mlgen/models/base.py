"""What every mlgen LightningModule shares: nets and optimisers from config, RNG in checkpoints."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from torch import nn
from torchmetrics import Metric, MetricCollection

from mlgen.utils.errors import ConfigError
from mlgen.utils.instantiate import build_from_config
from mlgen.utils.rng import rng_states, set_rng_states


class MLGenModule(pl.LightningModule):
    """Base of the Classifier, VAE and GAN modules.

    Args:
        shape: data shape `[C, H, W]`, interpolated from `${data.shape}`.
        num_classes: number of labels, from `${data.num_classes}`.
        optimizer: config with `_target_` (a torch optimizer class) and its arguments.
        scheduler: optional LR scheduler config with `_target_`; stepped every epoch.
        monitor: metric that checkpoints, early stopping and sweeps use.
        monitor_mode: `min` or `max`.
        compile: `torch.compile` each net (in place, so checkpoints load with or without it).
        channels_last: channels-last memory format for conv nets and their image inputs
            (faster convolutions on recent GPUs, especially with bf16).
    """

    def __init__(
        self,
        shape: Sequence[int],
        num_classes: int,
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None = None,
        monitor: str = "val/loss",
        monitor_mode: str = "min",
        compile: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.compile_nets, self.channels_last = bool(compile), bool(channels_last)
        if monitor_mode not in ("min", "max"):
            raise ConfigError(f"model.monitor_mode={monitor_mode!r} is invalid. Fix: use min or max.")
        self.shape = tuple(int(s) for s in shape)
        self.num_classes = int(num_classes)
        check_optimizer_config(optimizer, "model.optimizer")

    def build_net(self, cfg: Mapping[str, Any], key: str = "model.net", **kwargs: Any) -> torch.nn.Module:
        return build_from_config(cfg, key, **kwargs)

    def make_optimizer(self, cfg: Mapping[str, Any], params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
        return instantiate(cfg, params=params)

    def configure_optimizers(self) -> Any:
        optimizer = self.make_optimizer(self.hparams.optimizer, self.parameters())
        if not self.hparams.get("scheduler"):
            return optimizer
        scheduler = instantiate(self.hparams.scheduler, optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": self.hparams.monitor}}

    def configure_model(self) -> None:
        """Lightning calls this once the module is on its device, before fit, test or predict."""
        for net in self.nets():
            if self.channels_last:
                net.to(memory_format=torch.channels_last)
                # a hook, not on_after_batch_transfer: that would silence the datamodule's own hook
                net.register_forward_pre_hook(_channels_last_input)
            if self.compile_nets:
                net.compile()  # nn.Module.compile keeps state_dict keys, unlike torch.compile(net)

    def nets(self) -> list[nn.Module]:
        """The trainable nets: every child module except metric containers."""
        return [m for m in self.children() if not isinstance(m, (Metric, MetricCollection, nn.ModuleDict))]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["mlgen_rng_states"] = rng_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "mlgen_rng_states" in checkpoint:
            set_rng_states(checkpoint["mlgen_rng_states"])


def _channels_last_input(net: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    x = args[0]
    if isinstance(x, torch.Tensor) and x.dim() == 4:
        return (x.contiguous(memory_format=torch.channels_last), *args[1:])
    return args


def check_optimizer_config(cfg: Mapping[str, Any], key: str) -> None:
    """Build the optimizer once on a dummy parameter so torch's own checks (lr >= 0, betas in
    [0, 1), ...) fail at construction time with the config key named, not mid-`fit`."""
    if not isinstance(cfg, Mapping) or "_target_" not in cfg:
        raise ConfigError(f"{key}={cfg!r} is invalid: it needs a _target_ such as torch.optim.Adam. Fix: e.g. {key}._target_=torch.optim.Adam.")
    lr = cfg.get("lr")
    if lr is not None and (not isinstance(lr, (int, float)) or lr <= 0):
        raise ConfigError(f"{key}.lr={lr!r} is invalid: the learning rate must be a positive number. Fix: set e.g. {key}.lr=1e-3.")
    try:
        instantiate(cfg, params=[torch.zeros(1, requires_grad=True)])
    except Exception as err:
        cause = err.__cause__ or err
        raise ConfigError(f"{key} is invalid: {cause}. Fix: correct that value under {key}.") from None
