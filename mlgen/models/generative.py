"""GenerativeModule: the one base of every generative family (VAE, GAN, the next ones).

The contract (docs/architecture.md, "Contracts", says it for the whole package):

- `conditional` is THE way to ask whether a model takes class labels. Code that may hold any kind of
  model (tasks, callbacks, the data layer) asks `getattr(model, "conditional", False)`.
- `sample(n, labels=None)` returns `n` samples in data space and scale ([-1, 1] images), drawn from the
  sampling nets in eval mode (their EMA copies when `ema_decay` is set). It checks the labels here, once:
  labels for an unconditional model, or labels outside `[0, num_classes)`, raise a `ValueError` that says
  the fix; a conditional model without labels draws the classes in turn, 0, 1, ..., 0, 1, ... (with
  `nrow = num_classes` each grid column is one class). Optionally a family offers `reconstruct(x, labels)`.
- Per-rank noise follows ONE convention, `mlgen.distributed.noise.global_batch_randn`: every rank draws the
  noise of the whole global batch and keeps its interleaved rows (rank r: rows r, r + world, ...), like the
  in-memory DDP shards, so 2 ranks x batch B see exactly the noise of 1 process x 2B. `noise(n, *dims)` is
  that for sampling noise; one process draws exactly `torch.randn(n, *dims)`.
- `ema_decay` (null or 0: off) keeps `<net>_ema`, a `torch.optim.swa_utils.AveragedModel` copy of every net
  named in `sampling_nets`; it is updated after every optimizer step (automatic optimisation and the fast
  path, `on_weights_updated`) or when the family calls `update_ema()` (manual updates, after stepping the
  sampling nets).
- `metrics.feature_ckpt` (or `metrics.features=inception`) turns on sample-quality metrics on validation and
  test: `<split>/fid_clf`, `<split>/kid_clf`, and `<split>/label_agreement` for conditional models
  (`mlgen.metrics.fid`). The feature extractor is re-read from its checkpoint, never stored in this one.

A family implements only: `sampling_nets`, `build_nets()` (called from `__init__`, with `self.hparams`
holding every argument), `generate(n, labels)` (labels already checked, on this device; None when
unconditional), `train_batch(batch, batch_idx)` (the loss of one batch; `MLGenModule.training_step` runs it on
Lightning's path or the fast path), and optionally `evaluation_step(batch, split)` for its
own validation/test metrics.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from mlgen.config.checks import check_number, require
from mlgen.distributed.noise import global_batch_randn
from mlgen.errors import ConfigError
from mlgen.metrics.fid import SampleQuality, build_sample_quality
from mlgen.models.base import MLGenModule

Batch = tuple[Tensor, Tensor]
QUALITY_PREFIX = "quality."
CLASSIFIER_METRICS = ("fid_clf", "kid_clf", "label_agreement")


class GenerativeModule(MLGenModule):
    """Base of the generative families; see the module docstring for the contract.

    Args:
        conditional: generate given class labels (CVAE, cGAN).
        ema_decay: decay of the exponential moving average of the sampling nets, used by `sample()` and
            the quality metrics; null or 0 disables it.
        metrics: sample-quality options: `features` (classifier | inception), `feature_ckpt`,
            `inception_weights`, `kid_subsets`, `kid_subset_size` (see `mlgen.metrics.fid`).
        **kwargs: `MLGenModule`'s arguments.
    """

    sampling_nets: ClassVar[tuple[str, ...]]  # attribute names of the nets `generate` runs

    def __init__(
        self,
        conditional: bool = False,
        ema_decay: float | None = None,
        metrics: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if ema_decay is not None:
            check_number("model.ema_decay", ema_decay, 0.0, False, 1.0, True, example=0.999)
        require(metrics is None or isinstance(metrics, Mapping), "model.metrics", metrics, "it must be a mapping of options",
                "e.g. model.metrics.feature_ckpt=<classifier run dir>/checkpoints/last.ckpt")
        monitor = kwargs.get("monitor")
        if monitor and monitor.split("/")[-1] in CLASSIFIER_METRICS and not (metrics or {}).get("feature_ckpt"):
            raise _missing_feature_ckpt(monitor)
        super().__init__(**kwargs)
        self.conditional = bool(conditional)
        self.build_nets()
        for name in self.sampling_nets:
            if ema_decay:  # torch's own EMA; buffers (batch-norm statistics) are averaged too
                ema = AveragedModel(getattr(self, name), multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True)
                setattr(self, f"{name}_ema", ema.requires_grad_(False))
            else:
                setattr(self, f"{name}_ema", None)
        self.quality: SampleQuality | None = None  # built in `setup`, only for runs that evaluate

    def build_nets(self) -> None:
        """Build the family's nets as attributes (at least those named in `sampling_nets`)."""
        raise NotImplementedError

    def generate(self, n: int, labels: Tensor | None) -> Tensor:
        """`n` samples from the nets `sampling_net(name)` returns; called by `sample` in eval mode, no grad."""
        raise NotImplementedError

    # --- sampling ------------------------------------------------------------------------
    def sampling_net(self, name: str) -> nn.Module:
        """The net `name` as sampling uses it: its EMA copy when enabled."""
        ema = getattr(self, f"{name}_ema")
        return ema.module if ema is not None else getattr(self, name)

    @torch.no_grad()
    def sample(self, n: int, labels: Tensor | None = None) -> Tensor:
        """`n` samples in data space; a conditional model without `labels` draws the classes in turn."""
        labels = self.check_labels(n, labels)
        with eval_mode(*(self.sampling_net(name) for name in self.sampling_nets)):
            return self.generate(n, labels)

    def configure_sampling(self, prefix: str = "model.", **options: Any) -> None:
        """Change how `sample()` draws after loading a checkpoint (`mlgen-sample sampling.*=`,
        `mlgen-synth synthetic.sampling.*=`); `prefix` names the user's keys in errors. A family with
        sampling options (diffusion: steps, eta, guidance) overrides this and passes on what it does not take.
        None means "as trained", so a config may list every option unset."""
        options = {key: value for key, value in options.items() if value is not None}
        if options:
            name = type(self).__name__
            keys = " ".join(f"{prefix}{key}={value}" for key, value in sorted(options.items()))
            raise ConfigError(
                f"{keys} is invalid: a {name} draws its samples one way and has no such sampling option "
                f"(diffusion models have sampling_steps, eta and guidance_scale). Fix: drop {prefix}* for this checkpoint."
            )

    def check_labels(self, n: int, labels: Tensor | None) -> Tensor | None:
        """`labels` as `n` class indices on this device, checked; classes in turn for a conditional model
        given none; None for an unconditional one."""
        name = type(self).__name__
        if labels is None:
            return (torch.arange(n) % self.num_classes).to(self.device) if self.conditional else None
        if not self.conditional:
            raise ValueError(
                f"labels were given to an unconditional {name}, which cannot choose classes. Fix: call sample(n) "
                "without labels, or train a conditional model (model.conditional=true, e.g. model=cvae or model=cgan)."
            )
        labels = torch.as_tensor(labels)
        if labels.shape != (n,) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise ValueError(
                f"labels of shape {list(labels.shape)} and dtype {labels.dtype} are invalid for sample(n={n}): one "
                f"integer class index per sample is needed. Fix: pass a 1-D integer tensor of length {n}."
            )
        if len(labels) and not (0 <= int(labels.min()) and int(labels.max()) < self.num_classes):
            raise ValueError(
                f"labels from {int(labels.min())} to {int(labels.max())} are invalid: this {name} has "
                f"{self.num_classes} classes. Fix: use class indices from 0 to {self.num_classes - 1}."
            )
        return labels.to(self.device)

    def noise(self, n: int, *dims: int) -> Tensor:
        """Standard normal `[n, *dims]` for this rank's `n` rows of the global batch (the one convention)."""
        return global_batch_randn(torch.empty(n, *dims, device=self.device))

    # --- EMA -----------------------------------------------------------------------------
    def update_ema(self) -> None:
        """Average the sampling nets into their EMA copies (a no-op when EMA is off)."""
        for name in self.sampling_nets:
            ema = getattr(self, f"{name}_ema")
            if ema is not None:
                ema.update_parameters(getattr(self, name))

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """Automatic optimisation: each real optimizer step (not each batch, under accumulation) updates the EMA."""
        super().optimizer_step(*args, **kwargs)
        self.on_weights_updated()

    def on_weights_updated(self) -> None:
        """After each optimizer step of a family Lightning optimises (also on the fast path): the EMA update."""
        self.update_ema()

    def nets(self) -> list[nn.Module]:
        """The family's nets and the EMA copies; not the frozen feature extractor of the quality metrics."""
        own = [m for m in super().nets() if not isinstance(m, (AveragedModel, SampleQuality))]
        emas = [getattr(self, f"{name}_ema") for name in self.sampling_nets]
        return own + [ema.module for ema in emas if ema is not None]

    # --- evaluation ----------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self.quality is None and stage in ("fit", "validate", "test"):
            self.quality = build_sample_quality(self.hparams.metrics or {}, self.shape, self.num_classes, self.conditional)

    def evaluation_step(self, batch: Batch, split: str) -> None:
        """The family's own validation/test metrics (none by default)."""

    def _update_quality(self, batch: Batch) -> None:
        if self.quality is None:
            return
        x, y = batch
        labels = y if self.conditional else None
        self.quality.update(x, real=True)
        self.quality.update(self.sample(len(x), labels), real=False, labels=labels)

    def metrics_held_back_in_sanity_check(self) -> set[str]:
        """Sample quality needs more samples than the sanity check's few batches, so it is skipped there."""
        return set() if self.quality is None else {f"val/{name}" for name in CLASSIFIER_METRICS}

    def _log_quality(self, split: str) -> None:
        if self.quality is None:
            return
        if not self.trainer.sanity_checking:
            # compute() has already reduced over DDP ranks, so every rank logs the same value
            self.log_dict({f"{split}/{k}": v for k, v in self.quality.compute().items()}, prog_bar=True)
        self.quality.reset()

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self.evaluation_step(batch, "val")
        self._update_quality(batch)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self.evaluation_step(batch, "test")
        self._update_quality(batch)

    def eval_epoch_end(self, split: str) -> None:
        super().eval_epoch_end(split)
        self._log_quality(split)

    # --- checkpoints ---------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The feature extractor is re-read from `metrics.feature_ckpt`, not copied into every checkpoint."""
        super().on_save_checkpoint(checkpoint)
        state = checkpoint["state_dict"]
        for key in [k for k in state if k.startswith(QUALITY_PREFIX)]:
            del state[key]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        checkpoint["state_dict"].update({k: v for k, v in self.state_dict().items() if k.startswith(QUALITY_PREFIX)})


def _missing_feature_ckpt(monitor: str) -> ConfigError:
    return ConfigError(
        f"model.monitor={monitor} needs a classifier to compute it, but model.metrics.feature_ckpt is not set. "
        "Fix: train a classifier on the same data (e.g. `mlgen-train experiment=mnist_cnn`) and pass "
        "model.metrics.feature_ckpt=<its run dir>/checkpoints/last.ckpt, or set model.monitor=null."
    )


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """The modules in eval mode for the block (batch norm uses its running statistics), then restored."""
    with ExitStack() as stack:
        for module in modules:
            was_training = module.training
            module.eval()
            stack.callback(module.train, was_training)
        yield
