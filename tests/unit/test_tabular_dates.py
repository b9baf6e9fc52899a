"""Dates in tables: text dates in one format and Parquet timestamps are `datetime` columns, encoded as days
and decoded back to the source's form (text in its own format, datetime64), exactly for whole days; month
names stay text; the transform with dates survives a checkpoint's state and a spec without dates reads
as one written before dates existed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mlgen.data.tabular import TabularDataModule
from mlgen.data.tabular_dates import from_days
from mlgen.data.tabular_transform import TableTransform

N = 200


def dated_table(n: int = N, seed: int = 0) -> pd.DataFrame:
    """A visit date (day first), an admission timestamp to the minute, a month name, a number and a label
    that follows the visit's year."""
    rng = np.random.default_rng(seed)
    visit = pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 3 * 365, n), unit="D")
    admitted = pd.Timestamp("2021-06-01") + pd.to_timedelta(rng.integers(0, 60 * 24 * 90, n), unit="min")
    return pd.DataFrame({"visit": visit.strftime("%d/%m/%Y"), "admitted": admitted.strftime("%Y-%m-%d %H:%M"),
                         "month": visit.strftime("%B"), "dose": rng.gamma(2.0, 3.0, n).round(1),
                         "label": np.where(visit.year >= 2020, "late", "early")})


def datamodule(path, **kwargs) -> TabularDataModule:
    return TabularDataModule(path=str(path), target="label", max_modes=4, **kwargs)


def test_text_dates_are_datetime_columns_that_decode_to_their_own_format(tmp_path):
    table = dated_table()
    table.loc[[3, 50], "visit"] = np.nan  # missing dates: their own slot, decoded missing
    table.to_csv(tmp_path / "t.csv", index=False)
    dm = datamodule(tmp_path / "t.csv")
    columns = {c.name: c for c in dm.spec.columns}
    assert (columns["visit"].kind, columns["visit"].date_format, columns["visit"].missing) == ("datetime", "%d/%m/%Y", True)
    assert (columns["admitted"].kind, columns["admitted"].date_format) == ("datetime", "%Y-%m-%d %H:%M")
    assert columns["month"].kind == "categorical"  # a month name alone is no date
    dm.setup("fit")
    train = dm.table.pool.iloc[dm.table.train_rows.numpy()].reset_index(drop=True)
    decoded = dm.transform.decode(dm.transform.encode(train))
    # whole days come back exactly (rounded as the training days are); minutes to the minute, as written
    assert train["visit"].isna().sum() >= 1
    pd.testing.assert_series_equal(decoded["visit"], train["visit"])
    pd.testing.assert_series_equal(decoded["admitted"], train["admitted"])
    # a generator's rows (here random encodings): valid dates in the format, within the training range
    noise = torch.randn(500, dm.transform.width)
    rows = dm.transform.decode(noise)
    visits = pd.to_datetime(rows["visit"], format="%d/%m/%Y", errors="raise")
    seen = pd.to_datetime(train["visit"], format="%d/%m/%Y")
    assert visits.dropna().between(seen.min(), seen.max()).all() and visits.notna().sum() > 100
    assert rows["admitted"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d").all()


def test_parquet_timestamps_decode_to_datetime64(tmp_path):
    table = dated_table()
    table["visit"] = pd.to_datetime(table["visit"], format="%d/%m/%Y")
    table["admitted"] = pd.to_datetime(table["admitted"])
    table.to_parquet(tmp_path / "t.parquet", index=False)
    dm = datamodule(tmp_path / "t.parquet")
    assert {c.name: (c.kind, c.date_format) for c in dm.spec.columns}["visit"] == ("datetime", None)
    dm.setup("fit")
    train = dm.table.pool.iloc[dm.table.train_rows.numpy()].reset_index(drop=True)
    decoded = dm.transform.decode(dm.transform.encode(train))
    assert decoded["visit"].dtype == train["visit"].dtype
    assert (decoded["visit"] == train["visit"]).all()  # midnights: whole days
    # times to the minute: float32 encodings resolve the column's spread to seconds, rounding to minutes is exact
    assert {c.name: c.date_unit for c in dm.spec.dates} == {"visit": "D", "admitted": "min"}
    pd.testing.assert_series_equal(decoded["admitted"], train["admitted"])
    rows = dm.transform.decode(torch.randn(300, dm.transform.width))  # a generator's rows: to the minute too
    assert (rows["admitted"] == rows["admitted"].dt.floor("min")).all() and rows["admitted"].nunique() > 100


def test_time_zone_aware_timestamps_come_back_in_their_zone(tmp_path):
    table = dated_table()
    table["admitted"] = pd.to_datetime(table["admitted"]).dt.tz_localize("Europe/Berlin")  # across DST changes
    table.to_parquet(tmp_path / "t.parquet", index=False)
    dm = datamodule(tmp_path / "t.parquet")
    assert {c.name: c.kind for c in dm.spec.columns}["admitted"] == "datetime"
    dm.setup("fit")
    train = dm.table.pool.iloc[dm.table.train_rows.numpy()].reset_index(drop=True)
    decoded = dm.transform.decode(dm.transform.encode(train))
    assert decoded["admitted"].dtype == train["admitted"].dtype  # datetime64[..., Europe/Berlin]
    pd.testing.assert_series_equal(decoded["admitted"], train["admitted"])  # whole minutes in UTC too


def test_a_transform_with_dates_survives_its_checkpoint_state_and_old_states_still_match(tmp_path):
    dated_table().to_csv(tmp_path / "t.csv", index=False)
    dm = datamodule(tmp_path / "t.csv")
    state = dm.transform.state()
    restored = TableTransform.from_state(state)
    assert restored.matches(state) and dm.transform.matches(restored.state())
    rows = torch.randn(20, dm.transform.width)
    pd.testing.assert_frame_equal(restored.decode(rows), dm.transform.decode(rows))
    # a table without dates stores no date_format key: its state is what checkpoints held before dates existed
    plain = datamodule(tmp_path / "t.csv", columns={"visit": "drop", "admitted": "drop"}).transform.state()
    assert all(not key.startswith("date_") for column in plain["columns"] for key in column)
    assert [(c["date_format"], c["date_unit"]) for c in state["columns"] if c["kind"] == "datetime"] == [
        ("%d/%m/%Y", "D"), ("%Y-%m-%d %H:%M", "min")]


@pytest.mark.parametrize("declared", ["categorical", "drop"])
def test_dates_can_still_be_categories_or_left_out(tmp_path, declared):
    dated_table().to_csv(tmp_path / "t.csv", index=False)
    dm = datamodule(tmp_path / "t.csv", columns={"admitted": "drop", "visit": declared})
    assert {c.name: c.kind for c in dm.spec.columns}.get("visit") == (None if declared == "drop" else "categorical")


def test_days_far_outside_any_calendar_decode_to_the_last_representable_dates():
    """With data.enforce_min_max_values=false nothing bounds a generator's days: they saturate, not overflow."""
    decoded = from_days(np.array([1e12, -1e12, np.nan, 0.0]), "str", "%Y-%m-%d", "D")
    assert decoded.iloc[0].startswith("2262-") and decoded.iloc[1].startswith("1677-")
    assert pd.isna(decoded.iloc[2]) and decoded.iloc[3] == "1970-01-01"
