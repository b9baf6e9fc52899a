"""TabularDataModule on small CSV/Parquet tables the tests write: column inference and overrides, the
reversible transform (both continuous encodings), fitting on the training split only, seeded splits,
the layout and conditions generative models read, and the transform stored in checkpoints."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mlgen.data.tabular import TabularDataModule
from mlgen.data.tabular_transform import TableTransform
from mlgen.errors import DataError

N = 240


def mixed_table(n: int = N, seed: int = 0) -> pd.DataFrame:
    """Every kind of column: integer, bimodal continuous, text, bool, continuous with missing values,
    a text target; the label depends on income and city so the table is learnable."""
    rng = np.random.default_rng(seed)
    income = np.where(rng.random(n) < 0.5, rng.normal(30_000, 3_000, n), rng.normal(90_000, 8_000, n)).round(2)
    city = rng.choice(["berlin", "lima", "osaka"], n, p=[0.5, 0.3, 0.2])
    score = rng.normal(0.0, 1.0, n)
    score[rng.random(n) < 0.1] = np.nan
    label = np.where((income > 60_000) ^ (city == "lima"), "high", "low")
    return pd.DataFrame({"age": rng.integers(18, 80, n), "income": income, "city": city,
                         "member": rng.random(n) < 0.3, "score": score, "label": label})


def write(frame: pd.DataFrame, path) -> str:
    if str(path).endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return str(path)


@pytest.fixture
def table_csv(tmp_path):
    return write(mixed_table(), tmp_path / "table.csv")


def datamodule(path: str, **kwargs) -> TabularDataModule:
    kwargs.setdefault("target", "label")
    kwargs.setdefault("max_modes", 4)  # fast fits; the mixture still finds income's two modes
    return TabularDataModule(path=path, **kwargs)


def kinds(dm: TabularDataModule) -> dict[str, tuple[str, bool]]:
    return {c.name: (c.kind, c.missing) for c in dm.spec.columns}


def test_columns_are_inferred_from_the_data(table_csv):
    dm = datamodule(table_csv)
    assert kinds(dm) == {"age": ("integer", False), "income": ("continuous", False), "city": ("categorical", False),
                         "member": ("categorical", False), "score": ("continuous", True)}
    assert dm.class_names == ["high", "low"] and dm.num_classes == 2
    assert dm.shape == (dm.transform.width,)


def test_overrides_change_kinds_drop_columns_and_forbid_missing_values(table_csv):
    dm = datamodule(table_csv, columns={"age": "categorical", "income": {"kind": "integer"}, "member": "drop"})
    assert kinds(dm) == {"age": ("categorical", False), "income": ("integer", False), "city": ("categorical", False),
                         "score": ("continuous", True)}
    age = next(s for s in dm.layout if s.column == "age")
    train = dm.table.pool.iloc[dm.table.train_rows.numpy()]
    assert age.kind == "category" and age.width == train["age"].nunique() < mixed_table()["age"].nunique()
    absent = mixed_table()["score"].isna().to_numpy()
    first_row = int(np.flatnonzero(absent)[0]) + 1  # 1-based, as the message counts the file's data rows
    with pytest.raises(DataError, match=rf"'score' has {absent.sum()} missing value.*data row {first_row}\).*"
                                        r"data.columns.score.missing=false"):
        datamodule(table_csv, columns={"score": {"missing": False}})
    with pytest.raises(DataError, match="data.allow_missing=false"):
        datamodule(table_csv, allow_missing=False)
    assert kinds(datamodule(table_csv, allow_missing=False, columns={"score": {"missing": True}}))["score"] == ("continuous", True)


@pytest.mark.parametrize("continuous", ["mode", "quantile"])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_decode_of_encode_gives_back_columns_dtypes_and_categories(tmp_path, continuous, suffix):
    original = mixed_table()
    dm = datamodule(write(original, tmp_path / f"table{suffix}"), continuous=continuous)
    dm.setup("fit")
    pool = dm.table.pool
    source = pool.iloc[dm.table.train_rows.numpy()].reset_index(drop=True)
    x, y = dm.datasets["train"].tensors
    decoded = dm.decode(x, y)
    assert list(decoded.columns) == list(original.columns)  # the target back in its place
    assert (decoded.dtypes == source.dtypes).all(), (decoded.dtypes, source.dtypes)
    for name in ("age", "city", "member", "label"):  # categories and whole numbers exactly
        pd.testing.assert_series_equal(decoded[name], source[name])
    for name in ("income", "score"):
        assert decoded[name].isna().equals(source[name].isna())
        np.testing.assert_allclose(decoded[name], source[name], rtol=1e-5, atol=1e-5)
    # a mode-normalised scalar lies in [-1, 1] for values near their mode (CTGAN's tanh head)
    if continuous == "mode":
        scalars = x[:, [s.start for s in dm.layout if s.kind == "value"]]
        assert scalars.abs().max() <= 1.0
        _, val_rows = dm.split_indices(len(pool))  # rows the transform never saw decode too
        np.testing.assert_allclose(dm.decode(dm.datasets["val"].tensors[0])["income"],
                                   pool.iloc[val_rows.numpy()]["income"], rtol=1e-5)


def test_layout_tiles_each_row_and_names_every_slot(table_csv):
    dm = datamodule(table_csv)
    starts = [s.start for s in dm.layout]
    assert starts[0] == 0 and all(a.stop == b.start for a, b in zip(dm.layout, dm.layout[1:]))
    assert dm.layout[-1].stop == dm.shape[0]
    by_column = {}
    for span in dm.layout:
        by_column.setdefault(span.column, []).append((span.kind, span.activation))
    assert by_column["income"] == [("value", "tanh"), ("mode", "softmax")]
    assert by_column["city"] == [("category", "softmax")]
    score_modes = next(s for s in dm.layout if s.column == "score" and s.kind == "mode")
    assert score_modes.names[-1] == "missing"
    city = next(s for s in dm.layout if s.column == "city")
    assert city.names == ("berlin", "lima", "osaka")
    income_modes = next(s for s in dm.layout if s.column == "income" and s.kind == "mode")
    assert income_modes.width >= 2  # 30k and 90k are two modes
    quantile = datamodule(table_csv, continuous="quantile")
    assert [(s.kind, s.activation) for s in quantile.layout if s.column == "income"] == [("value", "identity")]


def test_category_conditions_count_the_training_rows(table_csv):
    dm = datamodule(table_csv)
    dm.setup("fit")
    conditions = dm.category_conditions()
    assert [s.column for s in conditions.spans] == ["city", "member"]
    train = dm.table.pool.iloc[dm.table.train_rows.numpy()]
    counts = train["city"].value_counts()
    assert conditions.counts[0].tolist() == [counts["berlin"], counts["lima"], counts["osaka"]]
    assert conditions.rows.shape == (len(train), 2)
    lima_rows = (conditions.rows[:, 0] == 1).nonzero().squeeze(1)
    assert (train["city"].to_numpy()[lima_rows.numpy()] == "lima").all()


def test_the_transform_is_fitted_on_the_training_split_only(tmp_path):
    table = mixed_table()
    train_path = write(table.iloc[:200], tmp_path / "train.csv")
    test = table.iloc[200:].copy()
    plain = datamodule(train_path, test_path=write(test, tmp_path / "test.csv"))
    test.loc[test.index[0], ["city", "income"]] = ["zurich", 5_000_000.0]  # unseen in training
    odd = datamodule(train_path, test_path=write(test, tmp_path / "test_odd.csv"))
    assert odd.transform.state() == plain.transform.state()
    odd.setup("test")
    x_test = odd.datasets["test"].tensors[0]
    city = next(s for s in odd.layout if s.column == "city")
    assert x_test[0, city.start:city.stop].sum() == 0  # an unseen category encodes as all zeros
    income = next(s for s in odd.layout if s.column == "income" and s.kind == "value")
    assert x_test[0, income.start] > 1  # far outside its mode, kept exactly in the encoding
    train_max = table.iloc[:200]["income"].max()
    assert odd.decode(x_test[:1])["income"].item() == train_max  # decoded rows stay in the training range
    unbounded = datamodule(train_path, test_path=write(test, tmp_path / "test_odd.csv"), enforce_min_max_values=False)
    unbounded.setup("test")
    assert unbounded.decode(x_test[:1])["income"].item() == pytest.approx(5_000_000.0, rel=1e-5)


def test_splits_are_seeded_and_the_test_rows_fixed(table_csv):
    def split_tensors(seed):
        dm = datamodule(table_csv, split_seed=seed, val_fraction=0.2)
        dm.setup("fit")
        return {name: ds.tensors for name, ds in dm.datasets.items()}

    a, again, other = split_tensors(1), split_tensors(1), split_tensors(2)
    assert {n: len(t[0]) for n, t in a.items()} == {"train": 154, "val": 38, "test": 48}
    for name in a:
        assert all(torch.equal(u, v) for u, v in zip(a[name], again[name]))
    assert not torch.equal(a["val"][1], other["val"][1]) or not torch.equal(a["val"][0], other["val"][0])
    # the held-out test rows don't depend on split_seed (the encoding of them may, through the fit)
    test_a = datamodule(table_csv, split_seed=1).table.test
    test_b = datamodule(table_csv, split_seed=2).table.test
    pd.testing.assert_frame_equal(test_a, test_b)


def test_the_fitted_transform_travels_in_checkpoints_as_plain_data(table_csv):
    dm = datamodule(table_csv)
    dm.setup("fit")
    state = dm.state_dict()
    rebuilt = TableTransform.from_state(torch.load(_saved(state, dm), weights_only=True)["transform"])
    x, y = dm.datasets["train"].tensors
    pd.testing.assert_frame_equal(rebuilt.decode(x, y), dm.decode(x, y))
    dm.load_state_dict(state)  # the same table: accepted
    other = datamodule(table_csv, continuous="quantile")
    with pytest.raises(DataError, match="differs from the one stored in the checkpoint"):
        other.load_state_dict(state)


def _saved(state, dm) -> str:
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


def test_shipped_mixed_table_has_text_categories():
    dm = TabularDataModule(dataset="fair", max_modes=4)
    assert dm.class_names == ["no", "yes"]
    found = kinds(dm)
    assert {n for n, (k, _) in found.items() if k == "categorical"} == {"rate_marriage", "religious", "educ", "occupation",
                                                                          "occupation_husb"}
    assert "affairs" not in found and found["age"] == ("continuous", False)
    rating = next(s for s in dm.layout if s.column == "rate_marriage")
    assert set(rating.names) == {"very poor", "poor", "fair", "good", "very good"}
    assert len(dm.table.pool) + len(dm.table.test) == 6366


def test_given_shape_and_num_classes_are_checked_against_the_fit(table_csv):
    width = datamodule(table_csv).shape[0]
    from mlgen.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"data.shape=\[{width + 1}\] is invalid: the fitted table encodes a row as {width}"):
        datamodule(table_csv, shape=[width + 1])
    with pytest.raises(ConfigError, match=r"data.num_classes=3 is invalid: the target 'label' has 2 classes"):
        datamodule(table_csv, num_classes=3)


def test_ddp_shards_of_encoded_rows_interleave_into_one_process_batches(table_csv):
    """The shared base's in-memory loader serves tables unchanged: 2 ranks x B == 1 process x 2B."""
    dm = datamodule(table_csv, val_fraction=0.25)  # 144 training rows: 9 batches of 16, or 2 x 9 of 8
    dm.setup("fit")
    whole = [x for x, _ in dm.in_memory_loader("train", True, 16, seed=3)]
    shards = [[x for x, _ in dm.in_memory_loader("train", True, 8, seed=3, rank=r, world_size=2)] for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == len(whole) == 9
    for batch, first, second in zip(whole, *shards):
        interleaved = torch.stack([first, second], dim=1).reshape(-1, batch.shape[1])
        assert torch.equal(interleaved, batch)
