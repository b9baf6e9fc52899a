"""The column spec of a table: what each column is (continuous, integer, categorical, datetime, the target)
and whether it may miss values; inferred from the data, overridden in config.

The spec is the table's schema, like the dtypes pandas reads: it is inferred from the whole table (the
train/val pool and the test rows). What the transform learns from values (modes, quantiles, category
lists, frequencies) is fitted on the training split only (`mlgen.data.tabular_transform`).

Inference: text, bool and pandas category columns are categorical; numbers are `integer` when every
value is whole, else `continuous`; datetime64 columns, and text whose every value is a date in one format,
are `datetime` (`mlgen.data.tabular_dates`). Text with a different value in most rows (an id, free text) is
refused with the ways out (drop it, make it numbers, or declare it categorical), and so are whole numbers that
differ in every row and run without gaps or carry an id's name (a row number, pandas' saved index `Unnamed: 0`).
Overrides: `data.columns.<name>` is a kind (`continuous`, `integer`, `categorical`, `datetime`, `drop`) or
`{kind: ..., missing: true|false}`.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlgen.config.checks import check_choice, require
from mlgen.data.tabular_dates import date_unit, from_days, mixed_format_example, text_date_format, to_days
from mlgen.errors import DataError

FEATURE_KINDS = ("continuous", "integer", "categorical", "datetime")
# a text column with more distinct values than this share of its rows (and more than the minimum) is refused
# unless declared (`_refuse_identifier_like`): the 6,366-row `fair` survey's text columns have at most 6 each
_MAX_DISTINCT_SHARE = 0.5
_MIN_DISTINCT_TO_REFUSE = 20
KINDS = (*FEATURE_KINDS, "drop")
# a name Hydra takes in a dotted override key (`+data.columns.age=drop`); others go in a dict, escaped
_HYDRA_KEY = re.compile(r"[A-Za-z_$][\w$-]*")
_HYDRA_ESCAPED = re.compile(r"""([\\()\[\]{}:=,'"])""")
# names of row ids: `id`, `patient_id`, `user id`, `PatientID`, `row`, `index`, pandas' `Unnamed: 0`
_ID_NAME = re.compile(r"(?i:(.*[_\s.-])?(id|row|index)|unnamed: \d+)|.*[a-z]ID")


@dataclass(frozen=True)
class Column:
    """One feature column. `dtype` is the pandas dtype of the source, restored by decoding;
    `missing` says the column has missing values (and the spec allows them); `date_format` is the
    `strftime` format of a datetime column written as text, `date_unit` what its decoded values round to."""

    name: str
    kind: str
    dtype: str
    missing: bool
    date_format: str | None = None
    date_unit: str | None = None

    def numbers(self, series: pd.Series) -> np.ndarray:
        """This number or datetime column's values as float64 (dates as days since 1970), NaN where missing."""
        if self.kind == "datetime":
            return to_days(series, self.date_format)
        return series.to_numpy(dtype="float64", na_value=np.nan)

    def from_numbers(self, values: np.ndarray) -> pd.Series:
        """The inverse of `numbers`, in the source's dtype (integers rounded)."""
        if self.kind == "datetime":
            return from_days(values, self.dtype, self.date_format, self.date_unit)
        return pd.Series(np.rint(values) if self.kind == "integer" else values).astype(self.dtype)

    def state(self) -> dict[str, Any]:
        """Plain fields for a checkpoint; the date fields only when set, so a spec without dates reads as
        one written before datetime columns existed (and a resume check of such a checkpoint still passes)."""
        return {key: value for key, value in vars(self).items() if not key.startswith("date_") or value is not None}


@dataclass(frozen=True)
class TableSpec:
    """Feature columns in table order (the target and dropped columns excluded), and the target:
    its name, dtype, sorted class values (label i is `classes[i]`) and position in the table."""

    columns: tuple[Column, ...]
    target: str
    target_dtype: str
    classes: tuple[Any, ...]
    order: tuple[str, ...]  # the table's columns as decoded: features and target in source order

    @property
    def dates(self) -> tuple[Column, ...]:
        """The datetime columns (their values are days since 1970 wherever mlgen computes with them)."""
        return tuple(c for c in self.columns if c.kind == "datetime")

    def labels(self, frame: pd.DataFrame) -> np.ndarray:
        """The target column as labels `0..len(classes)-1`."""
        return pd.Categorical(frame[self.target], categories=list(self.classes)).codes.astype(np.int64)


@dataclass(frozen=True)
class Override:
    kind: str | None
    missing: bool | None


def column_override(name: str, value: str) -> str:
    """The command-line override that sets column `name`'s kind, as a user types it: `+data.columns.age=drop`,
    or `'+data.columns={Unnamed\\: 0: drop}'` for a name Hydra's dotted keys can't hold (a space, a colon);
    a name its grammar can't spell at all (quotes, non-ASCII letters) is set in a config file."""
    if not name.isascii() or any(quote in name for quote in "'\""):
        return f"data.columns: {{{name!r}: {value}}} in a config file (an experiment's yaml)"
    if _HYDRA_KEY.fullmatch(name):
        return f"+data.columns.{name}={value}"
    escaped = _HYDRA_ESCAPED.sub(r"\\\1", name)
    return f"'+data.columns={{{escaped}: {value}}}'"


def parse_overrides(columns: Mapping[str, Any] | None) -> dict[str, Override]:
    """`data.columns` -> {name: Override}; a value is a kind or `{kind: ..., missing: ...}`."""
    overrides = {}
    for name, value in (columns or {}).items():
        key = f"data.columns.{name}"
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - {"kind", "missing"})
            require(not unknown, key, dict(value), f"it has unknown field(s) {unknown}",
                    "use {kind: categorical, missing: false} (both optional)")
            kind, missing = value.get("kind"), value.get("missing")
        else:
            kind, missing = value, None
        if kind is not None:
            check_choice(key, kind, KINDS)
        require(missing is None or isinstance(missing, bool), f"{key}.missing", missing, "it must be true or false",
                f"set {key}.missing=false to refuse missing values, true to allow them")
        overrides[str(name)] = Override(kind, missing)
    return overrides


def infer_spec(frame: pd.DataFrame, target: str, overrides: Mapping[str, Override], allow_missing: bool) -> TableSpec:
    """The spec of `frame` (the whole table), checked: known names, no column mixing numbers and
    text, missing values only where allowed, a categorical target with at least two classes."""
    names = [str(c) for c in frame.columns]
    require(target in names, "data.target", target, f"the table has no such column; its columns are {names}",
            "set data.target to the column holding the class labels")
    for name in overrides:
        require(name in names, f"data.columns.{name}", overrides[name].kind, f"the table has no column {name!r}; its columns are {names}",
                "remove it or use one of those names")
    require(target not in overrides, f"data.columns.{target}", getattr(overrides.get(target), "kind", None),
            "that column is data.target, whose classes are always categorical",
            f"remove data.columns.{target}")
    columns = []
    for name in names:
        override = overrides.get(name, Override(None, None))
        if name == target or override.kind == "drop":
            continue
        series = frame[name]
        kind, date_format = infer_kind(name, series, override.kind)
        missing = bool(series.isna().any())
        if missing and not (override.missing if override.missing is not None else allow_missing):
            switch = f"data.columns.{name}.missing=false" if override.missing is False else "data.allow_missing=false"
            raise DataError(
                f"Column {name!r} has {int(series.isna().sum())} missing value(s) (first in data row {_first(series.isna())}) but the "
                f"spec forbids them ({switch}). Fix: fill or remove those rows, or allow missing values in that column "
                f"(they then get their own one-hot slot)."
            )
        unit = date_unit(series.dropna(), date_format) if kind == "datetime" else None
        columns.append(Column(name, kind, str(series.dtype), missing, date_format, unit))
    kept = {c.name for c in columns} | {target}
    return TableSpec(tuple(columns), target, str(frame[target].dtype), target_classes(frame[target]),
                     tuple(n for n in names if n in kept))


def infer_kind(name: str, series: pd.Series, declared: str | None) -> tuple[str, str | None]:
    """The kind of one feature column, and the format of text dates; a declared kind wins where the values
    allow it."""
    dtype = series.dtype
    values = series.dropna()
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        natural = "categorical"
    elif pd.api.types.is_datetime64_any_dtype(dtype):  # time-zone aware too
        natural = "datetime"
        if declared not in (None, "datetime"):
            raise DataError(
                f"Column {name!r} holds dates and times ({dtype}) but is declared {declared} (data.columns.{name}). Fix: "
                f"leave its kind to inference (it is encoded as days since 1970 and decoded back to dates), or leave it out "
                f"with {column_override(name, 'drop')}."
            )
    elif pd.api.types.is_numeric_dtype(dtype):
        natural = "integer" if _all_whole(values) else "continuous"
        if natural == "integer" and declared is None:
            _refuse_row_numbers(name, values)
        if declared == "datetime":
            raise DataError(
                f"Column {name!r} is declared datetime (data.columns.{name}) but holds numbers such as {values.iloc[0]!r}. "
                f"Fix: write its dates as text in one format (e.g. 2024-03-01) or declare it {natural}."
            )
    elif pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        if declared == "categorical":
            return "categorical", None
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.notna().any() and numbers.isna().any():
            number, text = values[numbers.notna()].iloc[0], values[numbers.isna()].iloc[0]
            raise DataError(
                f"Column {name!r} mixes numbers and text (e.g. {number!r} in data row {_first(series == number)} and {text!r} in "
                f"data row {_first(series == text)}). Fix: clean it so every value is a number (a missing value as an empty "
                f"cell, or list its marker in data.na_values=[{text!r}]), or declare it text with "
                f"{column_override(name, 'categorical')}."
            )
        date_format = text_date_format(values) if declared in (None, "datetime") else None
        if date_format is not None:
            return "datetime", date_format
        if declared == "datetime":
            raise DataError(
                f"Column {name!r} is declared datetime (data.columns.{name}) but its values are not dates in one format "
                f"(the first is {values.iloc[0]!r}; a format needs a year, month and day). Fix: write every date the same "
                f"way (e.g. 2024-03-01 or 01/03/2024 14:30), or declare the column categorical."
            )
        natural = "categorical"
        _refuse_identifier_like(name, values, declared)
        if declared in ("continuous", "integer"):
            raise DataError(
                f"Column {name!r} is declared {declared} (data.columns.{name}) but holds text such as {values.iloc[0]!r}. "
                f"Fix: declare it categorical or clean the column so every value is a number."
            )
    else:
        raise DataError(
            f"Column {name!r} has dtype {dtype}, which mlgen's tables can't encode (they take numbers, text and "
            f"booleans). Fix: convert it to numbers or text, or leave it out with {column_override(name, 'drop')}."
        )
    return declared or natural, None


def _refuse_identifier_like(name: str, values: pd.Series, declared: str | None) -> None:
    """Text with a different value in most rows (ids, free text) is not a category: one-hot it would
    take a column per value, and a generator could only copy values of training rows. Taken only when
    declared categorical (or dropped); a declared number fails on its text next."""
    distinct = values.nunique()
    if declared is None and distinct > _MAX_DISTINCT_SHARE * len(values) and distinct > _MIN_DISTINCT_TO_REFUSE:
        mixed = mixed_format_example(values)
        if mixed is not None:
            raise DataError(
                f"Column {name!r} holds dates written in more than one format (e.g. {mixed[0]!r} and {mixed[1]!r}), so "
                f"it can't be read as one datetime column, and as text it would take {distinct} one-hot columns. Fix: "
                f"write every date the same way in the file (e.g. 2024-03-01), or leave it out with "
                f"{column_override(name, 'drop')}."
            )
        examples = ", ".join(repr(v) for v in values.drop_duplicates().iloc[:2])
        raise DataError(
            f"Column {name!r} has {distinct} distinct text values in {len(values)} rows (e.g. {examples}): as "
            f"categories it would take {distinct} one-hot columns, and a generator could only copy them; it looks like "
            f"an identifier or free text. Fix: leave it out with {column_override(name, 'drop')}, turn it into numbers "
            f"in the file (e.g. days since a date), or keep it as categories with {column_override(name, 'categorical')}."
        )


def _refuse_row_numbers(name: str, values: pd.Series) -> None:
    """Whole numbers that differ in every row and either run without gaps or carry an id's name number the
    rows: as a feature a generator would learn the numbering and the privacy scores would measure it, not the
    data. A declared kind keeps them."""
    count = len(values)
    if count <= _MIN_DISTINCT_TO_REFUSE or values.nunique() != count:
        return
    low, high = int(values.min()), int(values.max())
    if high - low + 1 != count and not _ID_NAME.fullmatch(name):
        return
    from_pandas = name.startswith("Unnamed:")
    saved_index = " (pandas names its index so when a frame is saved without index=False)" if from_pandas else ""
    raise DataError(
        f"Column {name!r} holds {count} whole numbers, a different one in every row ({low} to {high}): it looks like "
        f"a row number or an id{saved_index}, and as a feature a generator would learn the numbering. Fix: leave it "
        f"out with {column_override(name, 'drop')} (or save the file without it), or keep it as a number with "
        f"{column_override(name, 'integer')}."
    )


def target_classes(series: pd.Series) -> tuple[Hashable, ...]:
    """Sorted class values of the target; the target may not miss values or be continuous."""
    name = series.name
    if series.isna().any():
        raise DataError(
            f"The target column {name!r} (data.target) has {int(series.isna().sum())} missing value(s) (first in data row "
            f"{_first(series.isna())}); every row needs a class. Fix: remove those rows from the table."
        )
    values = series.unique()
    if pd.api.types.is_float_dtype(series.dtype) and not _all_whole(series):
        raise DataError(
            f"The target column {name!r} (data.target) holds continuous numbers such as {series.iloc[0]!r}; mlgen's "
            f"models need class labels. Fix: set data.target to a categorical column, or bin this one into classes."
        )
    classes = [v.item() if hasattr(v, "item") else v for v in values]
    try:
        classes = sorted(classes)
    except TypeError:  # values of different types: a stable order all the same
        classes = sorted(classes, key=repr)
    if len(classes) < 2:
        raise DataError(
            f"The target column {name!r} (data.target) has one class only ({classes[0]!r} in all {len(series)} rows); "
            f"a classifier or a conditional generator needs at least two. Fix: choose another target column or add rows "
            f"of the other classes."
        )
    return tuple(classes)


def _all_whole(values: pd.Series) -> bool:
    numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    numbers = numbers[~np.isnan(numbers)]
    return bool(np.all(np.mod(numbers, 1.0) == 0.0))


def _first(mask: pd.Series) -> int:
    """1-based position of the first True row (data rows of a file, header not counted)."""
    return int(np.flatnonzero(mask.to_numpy(dtype=bool, na_value=False))[0]) + 1
