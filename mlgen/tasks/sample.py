"""Sampling run: rebuild a generative model from its checkpoint, draw `n` images, write a grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig
from torch import Tensor
from torchvision.utils import save_image

from mlgen.checkpoints.allowlist import trusting_config_targets
from mlgen.checkpoints.load import load_model
from mlgen.errors import CheckpointError, ConfigError


@trusting_config_targets
def sample(cfg: DictConfig) -> list[Path]:
    """Write `cfg.out` (PNG grid of `cfg.n` samples) and, with `save_tensor`, `<out>.pt`; returns the paths."""
    n = cfg.n
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise ConfigError(f"n={n!r} is invalid: it must be a positive integer. Fix: e.g. n=64.")
    model, _ = load_model(cfg.ckpt_path)
    if not callable(getattr(model, "sample", None)):
        raise CheckpointError(
            f"ckpt_path={cfg.ckpt_path} holds a {type(model).__name__}, which cannot sample. "
            f"Fix: use a checkpoint of a generative model (model=vae, cvae, ...)."
        )
    labels = resolve_labels(cfg.labels, n, model)
    if cfg.get("seed") is not None:
        torch.manual_seed(cfg.seed)
    model.eval().to(cfg.device)
    with torch.no_grad():
        images = model.sample(n, None if labels is None else labels.to(model.device)).cpu()
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(images, out, nrow=cfg.nrow, normalize=True, value_range=(-1, 1))
    written = [out]
    if cfg.get("save_tensor"):
        written.append(out.with_suffix(".pt"))
        torch.save({"samples": images, "labels": labels}, written[-1])
    return written


def resolve_labels(spec: Any, n: int, model: Any) -> Tensor | None:
    """`labels=` as `n` class indices: an int for all samples, or a list repeated to length `n`.

    Generative modules say whether they take labels with their `conditional` attribute."""
    if spec is None:
        return None
    if not getattr(model, "conditional", False):
        raise ConfigError(
            f"labels={_show(spec)} was given, but the checkpoint holds an unconditional "
            f"{type(model).__name__}, which cannot choose classes. Fix: drop labels=, or sample from a "
            f"conditional model's checkpoint (e.g. one trained with model=cvae)."
        )
    values = list(spec) if isinstance(spec, (list, ListConfig)) else [spec]
    num_classes = model.num_classes
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < num_classes for v in values):
        raise ConfigError(
            f"labels={_show(spec)} is invalid: the model has {num_classes} classes, so labels must be "
            f"integers from 0 to {num_classes - 1}. Fix: e.g. labels=3 or labels=[0,1,2]."
        )
    return torch.tensor(values).repeat((n + len(values) - 1) // len(values))[:n]


def _show(spec: Any) -> str:
    return str(list(spec)) if isinstance(spec, (list, ListConfig)) else repr(spec)
