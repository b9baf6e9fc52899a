"""Decoded numbers read like the training split's: inside each column's training range and with as many
decimals as its values have (SDV's enforce_min_max_values / enforce_rounding); the training class counts travel
with the transform; checkpoints written before either still decode and resume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from mlgen.data.tabular import TabularDataModule
from mlgen.data.tabular_transform import TableTransform
from tests.unit.test_tabular import write


def _table(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"bmi": rng.normal(27.0, 4.0, n).round(1), "age": rng.integers(18, 90, n),
                         "dose": rng.normal(0.0, 1.0, n), "smoker": rng.choice(["yes", "no"], n),
                         "label": np.where(rng.random(n) < 0.7, "healthy", "sick")})


def _datamodule(tmp_path, **options) -> TabularDataModule:
    return TabularDataModule(path=write(_table(), tmp_path / "t.csv"), target="label", max_modes=3, **options)


def _far_outside(dm: TabularDataModule) -> torch.Tensor:
    """Encoded training rows pushed far past every number column's range, as a generator's tanh or
    identity outputs can land: each value scalar set to its extreme."""
    dm.setup("fit")
    rows = dm.datasets["train"].tensors[0][:4].clone()
    for span in dm.layout:
        if span.kind == "value":
            rows[:2, span.start] = 1.0
            rows[2:, span.start] = -1.0
    return rows


def test_decoded_numbers_stay_in_the_training_range_with_the_trainings_decimals(tmp_path):
    dm = _datamodule(tmp_path)
    train = dm.table.pool.iloc[dm.table.train_rows.numpy()]
    rows = dm.decode(_far_outside(dm))
    for column in ("bmi", "age", "dose"):
        assert rows[column].between(train[column].min(), train[column].max()).all(), (column, rows[column].tolist())
    assert (rows["bmi"] == rows["bmi"].round(1)).all() and rows["age"].dtype == train["age"].dtype
    assert (rows["dose"] != rows["dose"].round(6)).any()  # a column of full-precision values is not rounded
    free = _datamodule(tmp_path, enforce_min_max_values=False, enforce_rounding=False)
    loose = free.decode(_far_outside(free))
    assert not loose["bmi"].between(train["bmi"].min(), train["bmi"].max()).all()
    assert (loose["bmi"] != loose["bmi"].round(1)).any()


def test_training_rows_still_decode_to_themselves(tmp_path):
    dm = _datamodule(tmp_path)
    dm.setup("fit")
    x, y = dm.datasets["train"].tensors
    train = dm.table.pool.iloc[dm.table.train_rows.numpy()].reset_index(drop=True)
    back = dm.decode(x, y)
    pd.testing.assert_frame_equal(back[["bmi", "age", "smoker", "label"]], train[["bmi", "age", "smoker", "label"]],
                                  check_dtype=False)
    assert np.allclose(back["dose"], train["dose"], rtol=1e-5)


def test_the_training_class_counts_travel_with_the_transform(tmp_path):
    dm = _datamodule(tmp_path)
    train = dm.table.pool.iloc[dm.table.train_rows.numpy()]
    counts = train["label"].value_counts()
    assert dm.transform.class_counts == [int(counts["healthy"]), int(counts["sick"])]
    rebuilt = TableTransform.from_state(dm.transform.state())
    assert rebuilt.class_counts == dm.transform.class_counts and rebuilt.formats == dm.transform.formats


def test_a_state_written_before_number_formats_decodes_as_then_and_still_matches(tmp_path):
    dm = _datamodule(tmp_path)
    old = {k: v for k, v in dm.transform.state().items() if k not in ("formats", "class_counts")}
    assert dm.transform.matches(old)
    before = TableTransform.from_state(old)
    assert before.class_counts is None and before.formats == [None] * len(before.encoders)
    rows = _far_outside(dm)
    assert (before.decode(rows)["bmi"] != dm.decode(rows)["bmi"]).any()  # unclipped and unrounded, as then
    changed = {**dm.transform.state(), "class_counts": [1, 2]}
    assert not dm.transform.matches(changed)
