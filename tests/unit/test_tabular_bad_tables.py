"""Bad tables stop the datamodule with one paragraph that names the bad value and the fix, and write
nothing (the folder holding the table is unchanged)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from mlgen.data.tabular import TabularDataModule
from mlgen.data.tabular_columns import column_override
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


def _codes(folder):
    """A column of visit codes, one per row: 60 one-hot columns as categories."""
    frame = good_table().assign(visit=[f"V{i:04d}-{i * 7 % 13}" for i in range(60)])
    return {"path": _csv(folder, frame)}


def _mixed_dates(folder):
    """Dates, one per row, but every fourth one written with slashes."""
    days = pd.date_range("2020-01-01", periods=60, freq="D")
    visit = [d.strftime("%Y/%m/%d" if i % 4 == 3 else "%Y-%m-%d") for i, d in enumerate(days)]
    return {"path": _csv(folder, good_table().assign(visit=visit))}


def _declared_date(folder):
    """Text declared datetime whose values are not dates in one format."""
    frame = good_table().assign(when=["2020-01-%02d" % (1 + i % 28) if i % 9 else "soon" for i in range(60)])
    return {"path": _csv(folder, frame), "columns": {"when": "datetime"}}


def _saved_index(folder):
    """pandas' `to_csv` without index=False: the row numbers come back as a column 'Unnamed: 0'."""
    path = folder / "table.csv"
    good_table().sample(frac=1.0, random_state=0).reset_index(drop=True).to_csv(path)
    return {"path": str(path)}


def _patient_ids(folder):
    """Ids with gaps, one per row, in a column named as an id."""
    ids = np.random.default_rng(1).choice(np.arange(1000, 9000), 60, replace=False)
    return {"path": _csv(folder, good_table().assign(patient_id=ids))}


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
    "identifier-like text": (_codes, DataError, ["Column 'visit' has 60 distinct text values in 60 rows", "'V0000-0'",
                                                  "+data.columns.visit=drop", "+data.columns.visit=categorical", "Fix"]),
    "row numbers": (_saved_index, DataError, ["Column 'Unnamed: 0' holds 60 whole numbers, a different one in every row (0 to 59)",
                                              "index=False", "'+data.columns={Unnamed\\: 0: drop}'",
                                              "'+data.columns={Unnamed\\: 0: integer}'", "Fix"]),
    "integer ids": (_patient_ids, DataError, ["Column 'patient_id' holds 60 whole numbers", "an id",
                                              "+data.columns.patient_id=drop", "+data.columns.patient_id=integer", "Fix"]),
    "dates in two formats": (_mixed_dates, DataError, ["Column 'visit' holds dates written in more than one format",
                                                       "'2020-01-01' and '2020/01/04'", "the same way",
                                                       "+data.columns.visit=drop", "Fix"]),
    "not dates": (_declared_date, DataError, ["Column 'when' is declared datetime", "not dates in one format",
                                              "'soon'", "declare the column categorical", "Fix"]),
    "numbers declared dates": (lambda d: {"path": _csv(d, good_table()), "columns": {"income": "datetime"}}, DataError,
                               ["Column 'income' is declared datetime", "holds numbers", "declare it continuous", "Fix"]),
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
    options = _codes(tmp_path)
    kept = TabularDataModule(target="label", columns={"visit": "categorical"}, max_modes=2, **options)
    assert len(next(s for s in kept.layout if s.column == "visit").names) == 43  # a date per training row (60 less test and val)
    dropped = TabularDataModule(target="label", columns={"visit": "drop"}, max_modes=2, **options)
    assert all(s.column != "visit" for s in dropped.layout)
    few = good_table().assign(city=[f"city{i % 20}" for i in range(60)])  # 20 values in 60 rows: categories
    assert TabularDataModule(target="label", path=_csv(tmp_path, few, "few.csv"), max_modes=2).shape[0] > 20


def test_row_numbers_are_kept_when_declared_and_unique_whole_numbers_without_an_ids_name_are_features(tmp_path):
    options = _patient_ids(tmp_path)
    kept = TabularDataModule(target="label", columns={"patient_id": "integer"}, max_modes=2, **options)
    assert any(s.column == "patient_id" for s in kept.layout)
    assert all(s.column != "patient_id" for s in TabularDataModule(target="label", columns={"patient_id": "drop"},
                                                                   max_modes=2, **options).layout)
    # the same numbers under a measurement's name (gaps, so not a row count): a feature like any other
    cents = good_table().assign(income_cents=np.random.default_rng(1).choice(np.arange(1000, 9000), 60, replace=False))
    dm = TabularDataModule(target="label", path=_csv(tmp_path, cents, "cents.csv"), max_modes=2)
    assert any(s.column == "income_cents" for s in dm.layout)


@pytest.mark.parametrize("name", ["age", "patient-id", "Unnamed: 0", "mean radius", "a=b", "x(1)", "a.b", "1st", "x,y"])
def test_the_override_a_message_suggests_names_the_column_when_hydra_parses_it(name):
    """The fixes quote `+data.columns...` for the column at hand; Hydra's dotted keys take no space or colon,
    so such names go in a dict with escapes (shell quotes removed as the shell does)."""
    typed = column_override(name, "drop")
    override = OverridesParser.create().parse_overrides([typed.strip("'")])[0]
    value = override.value()
    if isinstance(value, dict):
        assert (override.key_or_group, value) == ("data.columns", {name: "drop"})
    else:
        assert (override.key_or_group, value) == (f"data.columns.{name}", "drop")
    assert "config file" in column_override("café", "drop")  # no command-line spelling: the yaml way
