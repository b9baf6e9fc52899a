"""TableTransform: a table's feature columns <-> float rows `[N, D]`, reversible, fitted on the
training split only (one encoder per column, `mlgen.data.tabular_encoders`).

`decode(encode(frame))` gives back the feature columns with their dtypes and category names (exact
for categories, within float32 precision for numbers; integer columns are rounded). `layout` says
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

from mlgen.data.tabular_columns import Column, TableSpec
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


def fit_encoder(column: Column, series: pd.Series, options: TransformOptions) -> Encoder:
    if column.kind == "categorical":
        return OneHot.fit(series, column.missing)
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    values = values[~np.isnan(values)]
    if not len(values):
        raise DataError(f"Column {column.name!r} has no values in the training split, so it can't be encoded. Fix: leave "
                        f"it out with +data.columns.{column.name}=drop or fill it.")
    if options.continuous == "quantile":
        return QuantileNormalizer.fit(values, column.missing, options.quantiles, options.seed)
    return ModeNormalizer.fit(values, column.missing, options.max_modes, options.mode_weight_threshold, options.seed)


class TableTransform:
    """The fitted encoders of a table's feature columns, in `spec.columns` order."""

    def __init__(self, spec: TableSpec, encoders: Sequence[Encoder]) -> None:
        self.spec = spec
        self.encoders = list(encoders)
        self.layout: list[Span] = []
        start = 0
        for column, encoder in zip(spec.columns, self.encoders):
            self.layout += encoder.spans(column.name, start)
            start += encoder.width
        self.width = start

    @classmethod
    def fit(cls, train: pd.DataFrame, spec: TableSpec, options: TransformOptions) -> TableTransform:
        """Learn every column's encoder from the training rows only."""
        return cls(spec, [fit_encoder(column, train[column.name], options) for column in spec.columns])

    def encode(self, frame: pd.DataFrame) -> Tensor:
        """Feature columns of `frame` -> float32 `[N, width]` (the target column is ignored)."""
        blocks = []
        for column, encoder in zip(self.spec.columns, self.encoders):
            series = frame[column.name]
            values = series if isinstance(encoder, OneHot) else series.to_numpy(dtype="float64", na_value=np.nan)
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
        for column, encoder in zip(self.spec.columns, self.encoders):
            values = encoder.decode(rows[:, start:start + encoder.width])
            start += encoder.width
            if column.kind == "integer":
                values = np.rint(values)
            columns[column.name] = pd.Series(values).astype(column.dtype)
        if labels is not None:
            labels = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
            classes = np.array(self.spec.classes, dtype=object)
            columns[self.spec.target] = pd.Series(classes[labels.astype(np.int64)]).astype(self.spec.target_dtype)
        return pd.DataFrame({name: columns[name] for name in self.spec.order if name in columns})

    def state(self) -> dict[str, Any]:
        """Plain numbers and strings (no pickles): what a checkpoint stores to decode without the data."""
        spec = self.spec
        return {
            "columns": [vars(c) for c in spec.columns],
            "target": spec.target,
            "target_dtype": spec.target_dtype,
            "classes": list(spec.classes),
            "order": list(spec.order),
            "encoders": [encoder_state(e) for e in self.encoders],
        }

    def matches(self, state: Any) -> bool:
        """Whether `state` is this transform's, numbers compared to 1e-6 (a refit on another machine's
        maths libraries may differ in the last bits)."""
        return _same(self.state(), state)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TableTransform:
        spec = TableSpec(tuple(Column(**c) for c in state["columns"]), state["target"], state["target_dtype"],
                         tuple(state["classes"]), tuple(state["order"]))
        return cls(spec, [encoder_from_state(e) for e in state["encoders"]])


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return bool(np.isclose(a, b, rtol=1e-6, atol=1e-12))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b
