"""Sampling run: rebuild a generative model from its checkpoint, draw `n` samples and write them: images
as a PNG grid; table rows, decoded by the fitted transform the checkpoint carries, as a CSV or Parquet
file with the table's original columns, dtypes and category names (and the target column)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig, ListConfig
from torch import Tensor

from mlgen.checkpoints.allowlist import trusting_config_targets
from mlgen.checkpoints.load import load_checkpoint, load_model
from mlgen.config.checks import check_int
from mlgen.data.synthetic import class_labels
from mlgen.distributed.run_id import cannot_create
from mlgen.errors import CheckpointError, ConfigError
from mlgen.tracking.labelled_grid import sample_grid

if TYPE_CHECKING:
    from mlgen.data.tabular_transform import TableTransform

TABLE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@trusting_config_targets
def sample(cfg: DictConfig) -> list[Path]:
    """Write `cfg.out` (a PNG grid of `cfg.n` images, or a CSV / Parquet table of `cfg.n` rows) and, with
    `save_tensor`, `<out>.pt`; returns the paths."""
    n = cfg.n
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise ConfigError(f"n={n!r} is invalid: it must be a positive integer. Fix: e.g. n=64.")
    check_int("nrow", cfg.nrow, 1, example=8)
    check_int("min_side", cfg.min_side, 1, example=28)
    if str(cfg.device).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={cfg.device} is invalid: there is no GPU here (torch.cuda.is_available() is False). "
                          "Fix: device=cpu, or run on a machine with a GPU.")
    problem = cannot_create(Path(cfg.out).parent)
    if problem:
        raise ConfigError(f"out={cfg.out} can't be written: {problem}. Fix: set out= to a path in a writable folder.")
    model, run_config = load_model(cfg.ckpt_path)
    if not callable(getattr(model, "sample", None)):
        raise CheckpointError(
            f"ckpt_path={cfg.ckpt_path} holds a {type(model).__name__}, which cannot sample. "
            f"Fix: use a checkpoint of a generative model (model=vae, cvae, ...)."
        )
    model.configure_sampling("sampling.", **(cfg.get("sampling") or {}))
    transform = table_transform(cfg.ckpt_path, run_config)
    labels = resolve_labels(cfg.labels, n, model, None if transform is None else transform.spec.classes)
    out = output_path(Path(cfg.out), transform is not None)
    if cfg.get("seed") is not None:
        torch.manual_seed(cfg.seed)
    model.eval().to(cfg.device)
    if labels is None and getattr(model, "conditional", False):
        labels = default_labels(n, model, transform)  # the rows (or grid) get them
    with torch.no_grad():
        images = model.sample(n, None if labels is None else labels.to(model.device)).cpu()
    out.parent.mkdir(parents=True, exist_ok=True)
    if transform is None:
        sample_grid(images, cfg.nrow, labels, cfg.min_side).save(out)
    else:
        write_table(transform.decode(images, labels), out)
    written = [out]
    if cfg.get("save_tensor"):
        written.append(out.with_suffix(".pt"))
        torch.save({"samples": images, "labels": labels}, written[-1])
    return written


def default_labels(n: int, model: Any, transform: TableTransform | None) -> Tensor:
    """Labels when none are asked for: a table's rows follow its training split's class frequencies, in random
    order (a synthetic copy of the table, as SDV's `sample(n)` gives); images, and tables from checkpoints
    without those counts, take the classes in turn as `sample()` draws them (a grid row per class)."""
    if transform is None or transform.class_counts is None:
        return model.check_labels(n, None).cpu()
    labels = class_labels(n, len(transform.class_counts), transform.class_counts)
    return labels[torch.randperm(n)]


def table_transform(ckpt_path: str, run_config: dict[str, Any]) -> TableTransform | None:
    """The fitted table transform a tabular run's checkpoint carries (plain data), or None for other data."""
    from mlgen.data.tabular import TabularDataModule  # pandas only for tables
    from mlgen.data.tabular_transform import TableTransform

    data = run_config.get("data") or {}
    if data.get("_target_") != f"{TabularDataModule.__module__}.{TabularDataModule.__qualname__}":
        return None
    state = load_checkpoint(ckpt_path).get(TabularDataModule.__qualname__, {}).get("transform")
    if not isinstance(state, dict):
        raise CheckpointError(
            f"ckpt_path={ckpt_path} is a table model's checkpoint without the fitted table transform, so its samples "
            "can't be decoded into columns. Fix: use a checkpoint written by mlgen-train on a table (data=csv, ...)."
        )
    return TableTransform.from_state(state)


def output_path(out: Path, table: bool) -> Path:
    """`out`, checked against what is written: images as PNG; tables as CSV or Parquet by the suffix, the
    default samples.png becoming samples.csv."""
    if not table:
        if out.suffix.lower() in TABLE_FORMATS:
            raise ConfigError(f"out={out} is invalid for images: they are written as a PNG grid. Fix: e.g. out=samples.png.")
        return out
    if out.suffix.lower() == ".png":
        return out.with_suffix(".csv")
    if out.suffix.lower() not in TABLE_FORMATS:
        raise ConfigError(f"out={out} is invalid for table rows: the suffix must be one of {sorted(TABLE_FORMATS)}. "
                          "Fix: e.g. out=samples.csv or out=samples.parquet.")
    return out


def write_table(frame: Any, out: Path) -> None:
    """The decoded rows as CSV or Parquet (by `out`'s suffix), without the pandas index."""
    if TABLE_FORMATS[out.suffix.lower()] == "csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)


def resolve_labels(spec: Any, n: int, model: Any, class_names: Sequence[Any] | None = None) -> Tensor | None:
    """`labels=` as `n` class indices: an int for all samples, or a list repeated to length `n`; a table's
    classes may also be named as its target column holds them (`labels=malignant`).

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
    names = [str(c) for c in class_names or ()]
    values = [names.index(v) if isinstance(v, str) and v in names else v for v in values]
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < num_classes for v in values):
        named = f" (the table's classes {names}, by name or index)" if names else ""
        example = f"labels={names[-1]} or " if names else ""
        raise ConfigError(
            f"labels={_show(spec)} is invalid: the model has {num_classes} classes{named}, so labels must be "
            f"integers from 0 to {num_classes - 1}. Fix: e.g. {example}labels={num_classes - 1} or labels=[0,1]."
        )
    return torch.tensor(values).repeat((n + len(values) - 1) // len(values))[:n]


def _show(spec: Any) -> str:
    return str(list(spec)) if isinstance(spec, (list, ListConfig)) else repr(spec)
