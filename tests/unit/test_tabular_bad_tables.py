"""Bad tables stop the datamodule with one paragraph that names the bad value and the fix, and write
nothing (the folder holding the table is unchanged)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlgen.data.tabular import TabularDataModule
from mlgen.errors import ConfigError, DataError


def good_table(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"age": rng.integers(20, 70, n), "city": rng.choice(["berlin", "lima"], n),
                         "income": rng.normal(50.0, 10.0, n), "label": np.arange(n) % 2})


def _csv(folder, frame: pd.DataFrame, name: str = "table.csv") -> str:
    path = folder / name
    frame.to_csv(path, index=False)
    return str(path)


def _mixed(folder):
    frame = good_table().astype({"age": object})
    frame.loc[7:30, "age"] = "unknown"
    return {"path": _csv(folder, frame)}


def _one_class(folder):
    return {"path": _csv(folder, good_table().assign(label=1))}


def _nan_forbidden(folder):
    frame = good_table()
    frame.loc[3, "income"] = np.nan
    return {"path": _csv(folder, frame), "allow_missing": False}


def _nan_target(folder):
    frame = good_table().astype({"label": float})
    frame.loc[4, "label"] = np.nan
    return {"path": _csv(folder, frame)}


def _empty(folder):
    (folder / "empty.csv").write_bytes(b"")
    return {"path": str(folder / "empty.csv")}


def _header_only(folder):
    (folder / "header.csv").write_text("age,city,income,label\n")
    return {"path": str(folder / "header.csv")}


def _dates(folder):
    """A column of visit dates, one per row: 60 one-hot columns as categories."""
    frame = good_table().assign(visit=pd.date_range("2020-01-01", periods=60, freq="D").strftime("%Y-%m-%d"))
    return {"path": _csv(folder, frame)}


CASES = {
    "missing file": (lambda d: {"path": str(d / "nope.csv")}, DataError, ["data.path=", "nope.csv", "no such file", "Fix"]),
    "empty file": (_empty, DataError, ["empty.csv", "holds no rows and no columns", "Fix"]),
    "header only": (_header_only, DataError, ["header.csv", "holds no rows", "Fix"]),
    "unknown target": (lambda d: {"path": _csv(d, good_table()), "target": "labl"}, ConfigError,
                       ["data.target='labl' is invalid", "['age', 'city', 'income', 'label']", "Fix"]),
    "unknown column": (lambda d: {"path": _csv(d, good_table()), "columns": {"agee": "categorical"}}, ConfigError,
                       ["data.columns.agee", "no column 'agee'", "Fix"]),
    "unknown kind": (lambda d: {"path": _csv(d, good_table()), "columns": {"age": "ordinal"}}, ConfigError,
                     ["data.columns.age='ordinal' is invalid", "categorical", "Fix"]),
    "numbers mixed with text": (_mixed, DataError, ["Column 'age' mixes numbers and text", "'unknown' in data row 8",
                                                    "+data.columns.age=categorical", "data.na_values"]),
    "target with one class": (_one_class, DataError, ["'label'", "one class only", "Fix"]),
    "missing values forbidden": (_nan_forbidden, DataError, ["'income' has 1 missing value", "data row 4",
                                                             "data.allow_missing=false", "Fix"]),
    "missing target": (_nan_target, DataError, ["target column 'label'", "1 missing value", "data row 5", "Fix"]),
    "continuous target": (lambda d: {"path": _csv(d, good_table()), "target": "income"}, DataError,
                          ["'income'", "continuous numbers", "Fix"]),
    "identifier-like text": (_dates, DataError, ["Column 'visit' has 60 distinct text values in 60 rows", "'2020-01-01'",
                                                  "+data.columns.visit=drop", "+data.columns.visit=categorical", "Fix"]),
    "neither dataset nor path": (lambda d: {"target": "label"}, ConfigError, ["data.path=None is invalid", "data.dataset", "Fix"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_table_gives_one_paragraph_and_writes_nothing(case, tmp_path):
    make, error, expected = CASES[case]
    options = {"target": "label", **make(tmp_path)}
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(error) as caught:
        TabularDataModule(max_modes=2, **options)
    message = str(caught.value)
    for text in expected:
        assert text in message, message
    assert "\n" not in message and message.count("Fix:") == 1
    assert sorted(tmp_path.rglob("*")) == before


def test_a_column_declared_text_may_mix_numbers_and_text(tmp_path):
    options = _mixed(tmp_path)
    dm = TabularDataModule(target="label", columns={"age": "categorical"}, max_modes=2, **options)
    age = next(s for s in dm.layout if s.column == "age")
    assert "unknown" in age.names and "45" in age.names  # numbers kept as the text they were written as


def test_identifier_like_text_is_kept_when_declared_or_left_out_when_dropped(tmp_path):
    options = _dates(tmp_path)
    kept = TabularDataModule(target="label", columns={"visit": "categorical"}, max_modes=2, **options)
    assert len(next(s for s in kept.layout if s.column == "visit").names) == 43  # a date per training row (60 less test and val)
    dropped = TabularDataModule(target="label", columns={"visit": "drop"}, max_modes=2, **options)
    assert all(s.column != "visit" for s in dropped.layout)
    few = good_table().assign(city=[f"city{i % 20}" for i in range(60)])  # 20 values in 60 rows: categories
    assert TabularDataModule(target="label", path=_csv(tmp_path, few, "few.csv"), max_modes=2).shape[0] > 20
