"""Training data drawn from a conditional generator; validation and test stay real.

Everything here needs only the generative contract of docs/architecture.md, `sample(n, labels)`, so
a CVAE and a conditional GAN checkpoint serve equally; the batches follow the datamodule contract there.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from mlgen.config.checks import check_fraction
from mlgen.config.instantiate import build_from_config
from mlgen.errors import ConfigError


def class_counts(size: int, num_classes: int, proportions: Sequence[float] | None) -> list[int]:
    """Split `size` into per-class counts that follow `proportions` (balanced when None) and sum
    exactly to `size` (largest remainders get the leftover samples)."""
    if proportions is None:
        proportions = [1.0] * num_classes
    if len(proportions) != num_classes or any(p < 0 for p in proportions) or sum(proportions) <= 0:
        raise ConfigError(
            f"data.class_proportions={list(proportions)!r} is invalid: it needs {num_classes} non-negative "
            f"numbers, not all zero. Fix: e.g. data.class_proportions=null for balanced classes."
        )
    shares = [size * p / sum(proportions) for p in proportions]
    counts = [int(s) for s in shares]
    by_remainder = sorted(range(num_classes), key=lambda c: counts[c] - shares[c])
    for c in by_remainder[: size - sum(counts)]:
        counts[c] += 1
    return counts


def class_labels(size: int, num_classes: int, proportions: Sequence[float] | None) -> Tensor:
    """`size` class indices in `class_counts`' numbers, sorted by class."""
    return torch.repeat_interleave(torch.arange(num_classes), torch.tensor(class_counts(size, num_classes, proportions)))


def synthetic_count(n_real: int, mix_ratio: float, size: int | None) -> int:
    """How many samples to draw so they make up `mix_ratio` of the training set."""
    if mix_ratio == 1.0:
        return size if size is not None else n_real
    return round(n_real * mix_ratio / (1.0 - mix_ratio))


class SyntheticDataModule(pl.LightningDataModule):
    """Batches `(x, y)` like every mlgen datamodule; the training split holds generator samples.

    Args:
        generator_ckpt: checkpoint of a conditional generative model trained by mlgen (CVAE, cGAN).
        real: config of the real datamodule; it provides validation, test, batch sizes, loaders and,
            when mixing, the real training examples.
        mix_ratio: share of the training set that is synthetic: 1 trains on samples only, 0 on real
            data only, in between all real training examples plus enough samples (augmentation).
        size: number of samples when `mix_ratio` is 1 (default: as many as the real training split).
        class_proportions: relative class frequencies of the samples (default: balanced).
        seed: seed of the sampling, so the same config draws the same dataset.
        device: where to run the generator while sampling.
        sample_batch_size: samples drawn per generator call.
        cache_dir: the drawn dataset is saved here and reused by later runs with the same settings.
        shuffle_labels: permute the samples' labels (seeded by `seed`): the same samples made
            uninformative, the control arm of `mlgen-synth`.
        sampling: how the generator draws, for families that have options (diffusion: sampling_steps, eta,
            guidance_scale); None values keep what the checkpoint was trained with.
        real_fraction: share of the real training split kept (low-data runs), the same rows as the real
            datamodule's `train_fraction` would keep; cut here so that a table stays encoded by the
            transform fitted on the whole split, the one the generator's samples are in.
        shape, num_classes: read by the models; must equal the real data's.
    """

    def __init__(
        self,
        generator_ckpt: str,
        real: Mapping[str, Any],
        shape: Sequence[int],
        num_classes: int,
        mix_ratio: float = 1.0,
        size: int | None = None,
        class_proportions: Sequence[float] | None = None,
        seed: int = 0,
        device: str = "cpu",
        sample_batch_size: int = 1000,
        cache_dir: str = "synthetic",
        shuffle_labels: bool = False,
        real_fraction: float = 1.0,
        sampling: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_fraction("data.mix_ratio", mix_ratio, low_open=False, high_closed=True)
        check_fraction("data.real_fraction", real_fraction, low_open=True, high_closed=True)
        if size is not None and (not isinstance(size, int) or size <= 0):
            raise ConfigError(f"data.size={size!r} is invalid: it must be a positive integer or null. Fix: e.g. data.size=10000.")
        self.save_hyperparameters(logger=False)
        self.real = build_from_config(real, "data.real", _convert_="all")
        if tuple(shape) != self.real.shape or num_classes != self.real.num_classes:
            raise ConfigError(
                f"data.shape={list(shape)} / data.num_classes={num_classes} differ from the real data's "
                f"{list(self.real.shape)} / {self.real.num_classes}. Fix: leave them interpolated from data.real."
            )
        self.shape, self.num_classes = self.real.shape, self.real.num_classes
        self.generator_ckpt = Path(generator_ckpt).expanduser()

    def prepare_data(self) -> None:
        """Draw and cache the samples once (Lightning runs this on one process per node)."""
        self.real.prepare_data()
        self.real.setup("fit")
        path = self.cache_path()
        if path is not None and not path.is_file():
            x, y = self.draw(self._count())
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            torch.save({"x": x, "y": y}, partial)
            partial.replace(path)  # atomic: a crash never leaves a half-written cache behind

    def setup(self, stage: str | None = None) -> None:
        self.real.trainer = self.trainer  # the real module's loaders shard by rank and pick the device
        self.real.setup(stage)
        if stage not in (None, "fit") or "synthetic" in self.real.datasets:
            return
        real_x, real_y = self._real_train()
        path = self.cache_path()
        if path is None:
            x, y = torch.empty(0, *self.shape), torch.empty(0, dtype=torch.long)
        else:
            if not path.is_file():
                self.prepare_data()
            cached = torch.load(path, weights_only=True)
            x, y = cached["x"], cached["y"]
            if self.hparams.shuffle_labels:
                y = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(self.hparams.seed))]
        if self.hparams.mix_ratio < 1.0:
            x, y = torch.cat([real_x, x]), torch.cat([real_y, y])
        self.real.datasets["synthetic"] = TensorDataset(x, y)
        self.real.datasets["train"] = self.real.datasets["synthetic"]

    def _real_train(self) -> tuple[Tensor, Tensor]:
        x, y = self.real.datasets["train"].tensors
        keep = max(1, round(self.hparams.real_fraction * len(x)))  # as ArrayDataModule.split_indices
        return x[:keep], y[:keep]

    def _count(self) -> int:
        n_real = len(self._real_train()[0])
        return synthetic_count(n_real, self.hparams.mix_ratio, self.hparams.size)

    def cache_path(self) -> Path | None:
        """Cache file named by everything that decides its content (None: nothing to draw)."""
        count = self._count()
        if count == 0:
            return None
        if not self.generator_ckpt.is_file():
            raise ConfigError(
                f"data.generator_ckpt={self.generator_ckpt} does not exist. Fix: point it at a checkpoint of a "
                f"conditional generator trained with mlgen-train (model=cvae or model=cgan), e.g. <run dir>/checkpoints/last.ckpt."
            )
        stat = self.generator_ckpt.stat()
        key = repr((str(self.generator_ckpt.resolve()), stat.st_size, stat.st_mtime_ns, count,
                    class_counts(count, self.num_classes, self.hparams.class_proportions), self.hparams.seed,
                    sorted((self.hparams.sampling or {}).items())))
        return Path(self.hparams.cache_dir) / f"samples_{hashlib.sha1(key.encode()).hexdigest()[:16]}.pt"

    def draw(self, count: int) -> tuple[Tensor, Tensor]:
        """`count` labelled samples in the data's space, class counts as configured, seeded."""
        model = checked_generator(self.generator_ckpt, self.shape, self.num_classes, self.hparams.sampling)
        labels = class_labels(count, self.num_classes, self.hparams.class_proportions)
        model = model.to(self.hparams.device).eval()
        chunks = []
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.hparams.seed)
            for part in labels.split(self.hparams.sample_batch_size):
                chunks.append(model.sample(len(part), part.to(model.device)).float().cpu())
        x = torch.cat(chunks)
        # images live in [-1, 1]; an encoded table row does not (quantile scalars are standard normal), and
        # the tabular models bound their own tanh spans
        return (x.clamp_(-1, 1) if len(self.shape) == 3 else x), labels

    def train_dataloader(self) -> Any:
        return self.real.train_dataloader()

    def val_dataloader(self) -> Any:
        return self.real.val_dataloader()

    def test_dataloader(self) -> Any:
        return self.real.test_dataloader()


def checked_generator(ckpt: Path | str, shape: Sequence[int], num_classes: int, sampling: Mapping[str, Any] | None,
                      ckpt_key: str = "data.generator_ckpt", sampling_prefix: str = "data.sampling.") -> Any:
    """The generator of `ckpt` set to sample with `sampling`, refused (naming the user's keys) unless it is a
    conditional generator of examples of `shape` in `num_classes` classes: mlgen-synth calls this before its
    first arm trains, the datamodule before it draws."""
    from mlgen.checkpoints.load import load_model

    model, _ = load_model(ckpt)
    if not getattr(model, "conditional", False):
        raise ConfigError(
            f"{ckpt_key}={ckpt} is an unconditional {type(model).__name__}: its samples have no labels to "
            f"train a classifier on. Fix: train a conditional generator (e.g. model=cvae, model=cgan or model=ddpm_cond)."
        )
    if tuple(model.shape) != tuple(shape) or model.num_classes != num_classes:
        raise ConfigError(
            f"{ckpt_key}={ckpt} makes examples of shape {list(model.shape)} in {model.num_classes} classes, "
            f"but the real data has {list(shape)} and {num_classes}. Fix: use a generator trained on the same data."
        )
    model.configure_sampling(sampling_prefix, **(sampling or {}))
    return model
