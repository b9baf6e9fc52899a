"""Dates and times in tables: a `datetime` column is encoded as a number, days since 1970-01-01 (a time of
day is the fraction), by the number encoders, and decoded back to the source's form: datetime64 values (a
Parquet timestamp) as datetime64, in their time zone if they have one (counted in UTC), text dates in the
format they were written in (`%Y-%m-%d`, `%d/%m/%Y %H:%M`, ...), which pandas infers from the first value
(month first, else day first) and every other value must follow.

A date is not a category (one-hot would take a column per day and a generator could only copy them) and
not an id: its distribution, range and correlations are what a synthetic table should keep.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

EPOCH = pd.Timestamp("1970-01-01")
DAY = pd.Timedelta(days=1)
# float32 encodings of days resolve ~1e-7 of a column's spread (seconds over years), so decoding rounds to the
# column's unit (`date_unit`): for text the finest its format writes (14:04:59.6 would print as 14:04 where 14:05
# was meant), for datetime64 the coarsest that every value of the table is a whole number of
_FORMAT_UNITS = (("%f", "us"), ("%S", "s"), ("%M", "min"), ("%H", "h"), ("%I", "h"))
_UNITS = ("D", "h", "min", "s", "ms", "us")
_DAYS_RANGE = ((pd.Timestamp.min - EPOCH) / DAY + 1, (pd.Timestamp.max - EPOCH) / DAY - 1)


def text_date_format(values: pd.Series) -> str | None:
    """The one `strftime` format all of these (non-missing) text values are written in, or None when they
    are not dates: the format must name a year, a month and a day, so month names or times alone stay text."""
    if not len(values):
        return None
    text = values.astype(str)
    for dayfirst in (False, True):  # 03/01/2020: March 1st unless a later value is 31/12/2021
        guessed = _guess_format(text.iloc[0], dayfirst)
        if guessed is None or not _names_a_day(guessed):
            continue
        if pd.to_datetime(text, format=guessed, errors="coerce").notna().all():
            return guessed
    return None


def mixed_format_example(values: pd.Series) -> tuple[str, str] | None:
    """For text that reads as dates only when each value may have its own format (2020-01-03, 2020/01/04):
    the first value and the first one its format does not read; None for anything else."""
    text = values.astype(str)
    if not len(text) or pd.to_datetime(text, format="mixed", errors="coerce").isna().any():
        return None
    guessed = _guess_format(text.iloc[0], dayfirst=False)
    if guessed is None:
        return None
    unread = pd.to_datetime(text, format=guessed, errors="coerce").isna()
    return (text.iloc[0], text[unread].iloc[0]) if unread.any() else None


def _guess_format(text: str, dayfirst: bool) -> str | None:
    """pandas' guess of `text`'s format, without its warning that a day-first date was read with dayfirst=False
    (the callers try the other order, or report the value)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return guess_datetime_format(text, dayfirst=dayfirst)


def _names_a_day(date_format: str) -> bool:
    year = any(code in date_format for code in ("%Y", "%y"))
    return year and any(code in date_format for code in ("%m", "%b", "%B")) and "%d" in date_format


def date_unit(values: pd.Series, date_format: str | None) -> str:
    """What a date column's decoded values are rounded to: the finest unit that `date_format` writes, or for
    datetime64 values (non-missing) the coarsest unit all of them are whole in (dates: "D"; to the minute: "min")."""
    if date_format is not None:
        return next((unit for code, unit in _FORMAT_UNITS if code in date_format), "D")
    stamps = _timestamps(values, None)  # whole days in UTC, as they are counted
    return next((unit for unit in _UNITS if (stamps == stamps.dt.floor(unit)).all()), "us")


def _timestamps(series: pd.Series, date_format: str | None) -> pd.Series:
    """The column as time-zone naive timestamps: text read with `date_format`, time-zone aware stamps in UTC."""
    stamps = pd.to_datetime(series.astype("object"), format=date_format) if date_format else pd.to_datetime(series)
    return stamps.dt.tz_convert(None) if isinstance(stamps.dtype, pd.DatetimeTZDtype) else stamps


def to_days(series: pd.Series, date_format: str | None) -> np.ndarray:
    """Days since 1970-01-01, NaN where missing (`_timestamps` reads the column)."""
    return ((_timestamps(series, date_format) - EPOCH) / DAY).to_numpy(dtype="float64", na_value=np.nan)


def from_days(days: np.ndarray, dtype: str, date_format: str | None, unit: str | None) -> pd.Series:
    """Days since 1970-01-01 back to the source's dtype, rounded to `unit` (None: not rounded): text in
    `date_format`, or datetime64 (NaN: missing), in the source's time zone when it had one."""
    # a generator's value far outside the training range (with data.enforce_min_max_values=false) is kept inside
    # what datetime64[ns] can hold, about 1677-2262, instead of overflowing
    days = np.clip(days, _DAYS_RANGE[0], _DAYS_RANGE[1])
    stamps = pd.Series(EPOCH + pd.to_timedelta(days, unit="D"))
    stamps = stamps.dt.round(unit) if unit else stamps
    if date_format is None:
        if isinstance(pd.api.types.pandas_dtype(dtype), pd.DatetimeTZDtype):
            stamps = stamps.dt.tz_localize("UTC")
        return stamps.astype(dtype)
    return stamps.dt.strftime(date_format).where(stamps.notna(), None).astype(dtype)
