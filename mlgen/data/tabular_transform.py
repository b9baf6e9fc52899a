"""TableTransform: a table's feature columns <-> float rows `[N, D]`, reversible, fitted on the
training split only (one encoder per column, `mlgen.data.tabular_encoders`).

`decode(encode(frame))` gives back the feature columns with their dtypes and category names (exact
for categories, within float32 precision for numbers; integer columns are rounded). Decoded numbers are
also kept inside the training split's range and rounded to as many decimals as its values have
(`NumberFormat`, as SDV's `enforce_min_max_values` / `enforce_rounding`), so a generator's rows read
like the real ones (a BMI of 27.4, not 27.3861; no age below the youngest patient). `layout` says
which slice of a row is which column and of which kind, for the output heads of generative models;
decoding takes the argmax of each one-hot, so it also turns a generator's soft outputs into rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mlgen.data.tabular_columns import Column, TableSpec, column_override
from mlgen.data.tabular_encoders import (
    Encoder,
    ModeNormalizer,
    OneHot,
    QuantileNormalizer,
    Span,
    encoder_from_state,
    encoder_state,
)
from mlgen.errors import DataError


@dataclass(frozen=True)
class TransformOptions:
    """How continuous and integer columns are encoded (`data.continuous` and its settings)."""

    continuous: str = "mode"
    max_modes: int = 10
    mode_weight_threshold: float = 0.005
    quantiles: int = 1000
    seed: int = 0
    enforce_min_max_values: bool = True
    enforce_rounding: bool = True


MAX_DECIMALS = 10  # values with more are written at full precision


@dataclass(frozen=True)
class NumberFormat:
    """How decoded values of a number column are finished: clipped to `[lower, upper]` and rounded to
    `decimals` (each None: left as they are), learned from the training split."""

    lower: float | None
    upper: float | None
    decimals: int | None

    @classmethod
    def fit(cls, values: np.ndarray, options: TransformOptions) -> NumberFormat:
        bounded = options.enforce_min_max_values
        return cls(float(values.min()) if bounded else None, float(values.max()) if bounded else None,
                   _decimals(values) if options.enforce_rounding else None)

    def apply(self, values: np.ndarray) -> np.ndarray:
        """NaN (a missing value) stays NaN."""
        if self.lower is not None:
            values = np.clip(values, self.lower, self.upper)
        return np.round(values, self.decimals) if self.decimals is not None else values


def _decimals(values: np.ndarray) -> int | None:
    """The fewest decimals that write every value (up to `MAX_DECIMALS`; None: more)."""
    tolerance = 1e-9 * np.maximum(1.0, np.abs(values))
    return next((d for d in range(MAX_DECIMALS + 1) if np.all(np.abs(np.round(values, d) - values) <= tolerance)), None)


def fit_encoder(column: Column, series: pd.Series, options: TransformOptions) -> tuple[Encoder, NumberFormat | None]:
    """The column's encoder and, for a number column, how its decoded values are finished."""
    if column.kind == "categorical":
        return OneHot.fit(series, column.missing), None
    values = column.numbers(series)
    values = values[~np.isnan(values)]
    if not len(values):
        raise DataError(f"Column {column.name!r} has no values in the training split, so it can't be encoded. Fix: leave "
                        f"it out with {column_override(column.name, 'drop')} or fill it.")
    number_format = NumberFormat.fit(values, options)
    if options.continuous == "quantile":
        return QuantileNormalizer.fit(values, column.missing, options.quantiles, options.seed), number_format
    return ModeNormalizer.fit(values, column.missing, options.max_modes, options.mode_weight_threshold, options.seed), number_format


class TableTransform:
    """The fitted encoders of a table's feature columns, in `spec.columns` order."""

    def __init__(self, spec: TableSpec, encoders: Sequence[Encoder], formats: Sequence[NumberFormat | None] | None = None,
                 class_counts: Sequence[int] | None = None) -> None:
        """`formats`: per column (None for categories, and for all in a checkpoint written before them);
        `class_counts`: the training split's rows per class (what `mlgen-sample` draws labels by)."""
        self.spec = spec
        self.encoders = list(encoders)
        self.formats = list(formats) if formats is not None else [None] * len(self.encoders)
        self.class_counts = list(class_counts) if class_counts is not None else None
        self.layout: list[Span] = []
        start = 0
        for column, encoder in zip(spec.columns, self.encoders):
            self.layout += encoder.spans(column.name, start)
            start += encoder.width
        self.width = start

    @classmethod
    def fit(cls, train: pd.DataFrame, spec: TableSpec, options: TransformOptions) -> TableTransform:
        """Learn every column's encoder (and number format) and the class counts from the training rows only."""
        fitted = [fit_encoder(column, train[column.name], options) for column in spec.columns]
        counts = np.bincount(spec.labels(train), minlength=len(spec.classes))
        return cls(spec, [encoder for encoder, _ in fitted], [number_format for _, number_format in fitted],
                   [int(c) for c in counts])

    def encode(self, frame: pd.DataFrame) -> Tensor:
        """Feature columns of `frame` -> float32 `[N, width]` (the target column is ignored)."""
        blocks = []
        for column, encoder in zip(self.spec.columns, self.encoders):
            series = frame[column.name]
            values = series if isinstance(encoder, OneHot) else column.numbers(series)
            blocks.append(encoder.encode(values))
        return torch.from_numpy(np.concatenate(blocks, axis=1) if blocks else np.zeros((len(frame), 0), np.float32))

    def decode(self, rows: Tensor | np.ndarray, labels: Tensor | np.ndarray | None = None) -> pd.DataFrame:
        """Encoded rows (or a generator's outputs) -> a DataFrame with the original feature columns and
        dtypes; with `labels`, the target column too, in its original place and dtype."""
        rows = rows.detach().cpu().numpy() if isinstance(rows, Tensor) else np.asarray(rows)
        if rows.ndim != 2 or rows.shape[1] != self.width:
            raise ValueError(f"decode needs rows of shape [N, {self.width}], got {list(rows.shape)}")
        columns: dict[str, Any] = {}
        start = 0
        for column, encoder, number_format in zip(self.spec.columns, self.encoders, self.formats):
            values = encoder.decode(rows[:, start:start + encoder.width])
            start += encoder.width
            if number_format is not None:
                values = number_format.apply(values)
            columns[column.name] = pd.Series(values).astype(column.dtype) if isinstance(encoder, OneHot) else column.from_numbers(values)
        if labels is not None:
            labels = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
            classes = np.array(self.spec.classes, dtype=object)
            columns[self.spec.target] = pd.Series(classes[labels.astype(np.int64)]).astype(self.spec.target_dtype)
        return pd.DataFrame({name: columns[name] for name in self.spec.order if name in columns})

    def state(self) -> dict[str, Any]:
        """Plain numbers and strings (no pickles): what a checkpoint stores to decode without the data."""
        spec = self.spec
        return {
            "columns": [c.state() for c in spec.columns],
            "target": spec.target,
            "target_dtype": spec.target_dtype,
            "classes": list(spec.classes),
            "order": list(spec.order),
            "encoders": [encoder_state(e) for e in self.encoders],
            "formats": [None if f is None else vars(f) for f in self.formats],
            "class_counts": self.class_counts,
        }

    def matches(self, state: Any) -> bool:
        """Whether `state` is this transform's, numbers compared to 1e-6 (a refit on another machine's
        maths libraries may differ in the last bits). A checkpoint written before number formats and class
        counts were stored is compared on what it has (both follow from the same training rows)."""
        mine = self.state()
        if isinstance(state, dict):
            mine = {key: value for key, value in mine.items() if key in state or key not in _ADDED_LATER}
        return _same(mine, state)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TableTransform:
        spec = TableSpec(tuple(Column(**c) for c in state["columns"]), state["target"], state["target_dtype"],
                         tuple(state["classes"]), tuple(state["order"]))
        formats = [None if f is None else NumberFormat(**f) for f in state.get("formats") or [None] * len(state["encoders"])]
        return cls(spec, [encoder_from_state(e) for e in state["encoders"]], formats, state.get("class_counts"))


_ADDED_LATER = ("formats", "class_counts")  # keys a checkpoint may lack (`matches`, `from_state`)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return bool(np.isclose(a, b, rtol=1e-6, atol=1e-12))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b
