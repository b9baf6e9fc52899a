"""TabularDataModule: tables (CSV, Parquet or a shipped dataset) as `(x, y)` batches of encoded rows.

`x` is float `[B, D]`, the feature columns encoded by a `TableTransform` fitted on the training split;
`y` the target's class. The transform is the table's part of the model: its width is `data.shape`,
its `layout` says what each slice of a row is, `decode` turns rows back into a DataFrame.

Why the constructor fits: models are built from `${data.shape}` before any `setup`, and D depends on
the fit (modes found, categories seen in training). Configs therefore say
`shape: ${mlgen_table:shape}` (and `num_classes: ${mlgen_table:num_classes}`): that resolver builds
this datamodule from the data config, which reads the table and fits the transform, and returns D.
The fit is cached per process (by options, split and file stamp), so building the datamodule for
the run reuses it, and `mlgen-train ... --cfg job --resolve` shows the real D. A Python user leaves
`shape` and `num_classes` out. Seeded splits, loaders and DDP sharding are ArrayDataModule's: the
source's rows go through its split as row ids, and `prepare_splits` encodes them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from mlgen.config.checks import check_choice, check_fraction, check_int, check_number, require
from mlgen.data.arrays import ArrayDataModule, Arrays
from mlgen.data.tabular_columns import TableSpec, infer_spec, parse_overrides
from mlgen.data.tabular_encoders import Span
from mlgen.data.tabular_sources import PACKAGED, packaged_table, read_table
from mlgen.data.tabular_transform import TableTransform, TransformOptions
from mlgen.errors import DataError

TEST_SPLIT_SEED = 12345  # the test rows of a single table never depend on split_seed


@dataclass(frozen=True)
class TableSource:
    """Which table and how to read it (the hashable part of the options)."""

    dataset: str | None
    path: str | None
    test_path: str | None
    na_values: tuple[str, ...]
    test_fraction: float

    def stamp(self) -> tuple:
        """Changes when a file changes, so the fit cache never serves a stale table."""
        files = [Path(p).expanduser().resolve() for p in (self.path, self.test_path) if p]
        return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) if f.is_file() else (str(f),) for f in files)

    def read(self) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """The table, and the test file's rows if there is one."""
        frame = packaged_table(self.dataset) if self.dataset else read_table(self.path, "data.path", self.na_values)
        if not self.test_path:
            return frame, None
        test = read_table(self.test_path, "data.test_path", self.na_values)
        require(list(test.columns) == list(frame.columns), "data.test_path", self.test_path,
                f"its columns {list(test.columns)} differ from those of data.path {list(frame.columns)}",
                "give both files the same header")
        return frame, test

    def split(self, frame: pd.DataFrame, test: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The pool that train/val are drawn from, and the test rows."""
        if test is not None:
            return frame, test
        order = torch.randperm(len(frame), generator=torch.Generator().manual_seed(TEST_SPLIT_SEED)).numpy()
        n_test = int(round(self.test_fraction * len(frame)))
        if len(frame) - n_test < 2:
            raise DataError(f"The table has {len(frame)} row(s); with data.test_fraction={self.test_fraction} fewer than 2 "
                            f"are left to train and validate on. Fix: use a larger table.")
        pool, test = frame.iloc[order[n_test:]], frame.iloc[order[:n_test]]
        return pool.reset_index(drop=True), test.reset_index(drop=True)


@dataclass(frozen=True)
class FittedTable:
    pool: pd.DataFrame  # train and val rows (row ids index it)
    test: pd.DataFrame
    train_rows: Tensor
    transform: TableTransform


_FITTED: dict[tuple, FittedTable] = {}
_CACHE_SIZE = 4


def fitted_table(source: TableSource, target: str, columns: Mapping[str, Any] | None, allow_missing: bool,
                 options: TransformOptions, split_key: tuple, split: Callable[[int], tuple[Tensor, Tensor]]) -> FittedTable:
    """Read, check and split the table, fit its transform on the training rows; cached."""
    key = (source, source.stamp(), target, repr(sorted((columns or {}).items())), allow_missing, options, split_key)
    if key not in _FITTED:
        frame, test_file = source.read()
        overrides = parse_overrides(columns)
        # each file is checked on its own first, so that errors name rows as they are in that file
        spec = infer_spec(frame, target, overrides, allow_missing)
        if test_file is not None:
            infer_spec(test_file, target, overrides, allow_missing)
            spec = infer_spec(pd.concat([frame, test_file], ignore_index=True), target, overrides, allow_missing)
        pool, test = source.split(frame, test_file)
        train_rows, _ = split(len(pool))
        transform = TableTransform.fit(pool.iloc[train_rows.numpy()], spec, options)
        while len(_FITTED) >= _CACHE_SIZE:
            _FITTED.pop(next(iter(_FITTED)))
        _FITTED[key] = FittedTable(pool, test, train_rows, transform)
    return _FITTED[key]


@dataclass(frozen=True)
class CategoryConditions:
    """What CTGAN's training-by-sampling needs about the categorical columns of the training split:
    their one-hot `spans`, the training `counts` of each category slot per span, and `rows`
    `[N_train, len(spans)]`, each training row's slot in each span (rows with slot c of span j are
    `(rows[:, j] == c).nonzero()`)."""

    spans: list[Span]
    counts: list[Tensor]
    rows: Tensor


class TabularDataModule(ArrayDataModule):
    """Batches `(x, y)`: `x` float `[B, D]` encoded rows, `y` long `[B]` the target's class index.

    Args:
        target: the column of class labels (default: the shipped dataset's own).
        dataset: a table shipped in an installed package (`breast_cancer`, `wine`, `fair`), or
        path: a CSV (.csv, .tsv, .csv.gz) or Parquet (.parquet, .pq) file.
        test_path: a second file of the same columns as the test split; without it a fixed
            `test_fraction` of the table is held out (the same rows for every `split_seed`).
        columns: overrides of the inferred spec, `{name: kind}` with kind continuous, integer,
            categorical or drop, or `{name: {kind: ..., missing: true|false}}`.
        allow_missing: columns may miss values (each such column gets a "missing" slot); false:
            a missing value is an error unless the column's override allows it.
        na_values: extra markers of missing values in CSV files (e.g. ["?"]).
        continuous: encoding of continuous and integer columns: `mode` (CTGAN's mode-specific
            normalisation) or `quantile` (a standard normal scalar).
        max_modes, mode_weight_threshold: the Bayesian Gaussian mixture of `mode`.
        quantiles: number of quantiles of `quantile`.
        enforce_min_max_values, enforce_rounding: decoded numbers (a generator's rows) are clipped to the
            training split's range of their column and rounded to as many decimals as its values have
            (SDV's options of the same names, on by default there too).
        test_fraction: share of the table held out as the test split (without `test_path`).
        shape, num_classes: facts of the fitted table; given (as configs do through
            `${mlgen_table:...}`), they are checked against it.
        **kwargs: the arguments of `ArrayDataModule` (batch sizes, val/train fractions, split seed, ...).
    """

    def __init__(
        self,
        target: str | None = None,
        dataset: str | None = None,
        path: str | None = None,
        test_path: str | None = None,
        columns: Mapping[str, Any] | None = None,
        allow_missing: bool = True,
        na_values: Sequence[str] = (),
        continuous: str = "mode",
        max_modes: int = 10,
        mode_weight_threshold: float = 0.005,
        quantiles: int = 1000,
        enforce_min_max_values: bool = True,
        enforce_rounding: bool = True,
        test_fraction: float = 0.2,
        shape: Sequence[int] | None = None,
        num_classes: int | None = None,
        **kwargs: Any,
    ) -> None:
        require((dataset is None) != (path is None), "data.path", path,
                f"a table is either data.path (a CSV or Parquet file) or data.dataset (one shipped: {sorted(PACKAGED)}), "
                f"exactly one of them, and data.dataset={dataset!r}",
                "e.g. mlgen-train data=csv data.path=table.csv data.target=label, or data=breast_cancer")
        if dataset is not None:
            check_choice("data.dataset", dataset, sorted(PACKAGED))
        target = target if target is not None else (PACKAGED[dataset][1] if dataset else None)
        require(isinstance(target, str) and target != "", "data.target", target, "a table from data.path needs its label column named",
                "set data.target=<the column of class labels>")
        check_choice("data.continuous", continuous, ("mode", "quantile"))
        check_int("data.max_modes", max_modes, low=1, example=10)
        check_number("data.mode_weight_threshold", mode_weight_threshold, 0.0, False, 1.0, True, example=0.005)
        check_int("data.quantiles", quantiles, low=2, example=1000)
        if test_path is None:
            check_fraction("data.test_fraction", test_fraction, low_open=True, high_closed=False)
        for key, value in (("allow_missing", allow_missing), ("enforce_min_max_values", enforce_min_max_values),
                           ("enforce_rounding", enforce_rounding)):
            require(isinstance(value, bool), f"data.{key}", value, "it must be true or false", f"set data.{key}=true or false")
        # shape and num_classes are facts of the fit, which needs the split arguments the base checks
        # and keeps; the base is built first with them (or stand-ins) and corrected below
        super().__init__(shape=[1] if shape is None else shape, num_classes=1 if num_classes is None else num_classes, **kwargs)
        source = TableSource(dataset, path, test_path, tuple(na_values), test_fraction)
        options = TransformOptions(continuous, max_modes, mode_weight_threshold, quantiles, self.hparams.split_seed,
                                   enforce_min_max_values, enforce_rounding)
        split_key = (self.hparams.split_seed, self.hparams.val_fraction, self.hparams.train_fraction)
        self.table = fitted_table(source, target, columns, allow_missing, options, split_key, self.split_indices)
        fitted_shape, fitted_classes = (self.transform.width,), len(self.spec.classes)
        if shape is not None:
            require(tuple(shape) == fitted_shape, "data.shape", list(shape), f"the fitted table encodes a row as {fitted_shape[0]} values",
                    "leave data.shape=${mlgen_table:shape}, which computes it")
        if num_classes is not None:
            require(num_classes == fitted_classes, "data.num_classes", num_classes,
                    f"the target {target!r} has {fitted_classes} classes {list(self.spec.classes)}",
                    "leave data.num_classes=${mlgen_table:num_classes}, which computes it")
        self.shape, self.num_classes = fitted_shape, fitted_classes

    # --- what models and tasks use -------------------------------------------------------
    @property
    def transform(self) -> TableTransform:
        return self.table.transform

    @property
    def spec(self) -> TableSpec:
        return self.table.transform.spec

    @property
    def layout(self) -> list[Span]:
        """Which slice of an encoded row is which column, and of which kind (see `Span`)."""
        return self.transform.layout

    @property
    def class_names(self) -> list[str]:
        return [str(c) for c in self.spec.classes]

    def decode(self, rows: Tensor, labels: Tensor | None = None) -> pd.DataFrame:
        """Encoded rows (and optionally their labels) -> the table's original columns."""
        return self.transform.decode(rows, labels)

    def category_conditions(self) -> CategoryConditions:
        """Category frequencies and per-row categories of the training split (after `setup`)."""
        x = self.datasets["train"].tensors[0]
        spans = [s for s in self.layout if s.kind == "category"]
        blocks = [x[:, s.start:s.stop] for s in spans]
        rows = torch.stack([b.argmax(dim=1) for b in blocks], dim=1) if spans else torch.zeros(len(x), 0, dtype=torch.long)
        return CategoryConditions(spans, [b.sum(dim=0).long() for b in blocks], rows)

    # --- ArrayDataModule hooks -----------------------------------------------------------
    def load_splits(self) -> dict[str, Arrays]:
        """Row ids and labels; the rows are encoded in `prepare_splits`, after the split."""
        pool, test = self.table.pool, self.table.test
        return {
            "train": (torch.arange(len(pool)), torch.from_numpy(self.spec.labels(pool))),
            "test": (torch.arange(len(test)), torch.from_numpy(self.spec.labels(test))),
        }

    def prepare_splits(self, splits: dict[str, Arrays]) -> dict[str, Arrays]:
        if not torch.equal(splits["train"][0], self.table.train_rows):
            raise RuntimeError("the training rows differ from those the transform was fitted on")
        frames = {"train": self.table.pool, "val": self.table.pool, "test": self.table.test}
        return {name: (self.transform.encode(frames[name].iloc[rows.numpy()]), y) for name, (rows, y) in splits.items()}

    # --- checkpoints: the fitted transform travels with the model ------------------------
    def state_dict(self) -> dict[str, Any]:
        """The fitted transform as plain numbers and strings, so a checkpoint can decode samples."""
        return {"transform": self.transform.state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """On resume: the table must encode as it did when the checkpoint was written."""
        if not self.transform.matches(state_dict.get("transform")):
            raise DataError(
                "The table's fitted transform differs from the one stored in the checkpoint (the table, its column "
                "spec, data.continuous or the split changed since that run), so the model would see rows encoded "
                "differently. Fix: resume with the same data settings and file, or start a new run."
            )
