"""Fidelity, privacy and utility scores of synthetic tables on hand-made tables with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlgen.metrics.tabular_fidelity import fidelity, total_variation
from mlgen.metrics.tabular_privacy import closest_distances, privacy
from mlgen.metrics.tabular_utility import sklearn_accuracy

CATEGORICAL = ["city", "label"]


def table(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    income = rng.normal(50_000, 10_000, n).round(2)
    city = rng.choice(["berlin", "lima", "osaka"], n)
    label = np.where(income > 50_000, "high", "low")
    return pd.DataFrame({"age": age, "income": income, "city": city, "label": label})


def test_identical_tables_score_perfectly():
    real = table()
    quality = fidelity(real, real.copy(), CATEGORICAL)
    assert {name: stat for name, (stat, _) in quality.columns.items()} == {"age": 0.0, "income": 0.0, "city": 0.0, "label": 0.0}
    assert quality.columns["age"][1] == "ks" and quality.columns["city"][1] == "tv"
    assert all(diff == pytest.approx(0.0, abs=1e-12) for diff, _ in quality.pairs.values())
    assert quality.pairs["age|income"][1] == "correlation" and quality.pairs["age|city"][1] == "contingency"
    assert quality.score == pytest.approx(1.0)
    leak = privacy(real, real.copy(), real.copy(), CATEGORICAL)
    assert (leak.exact_copy_share, leak.holdout_match_share) == (1.0, 1.0)
    assert (leak.dcr_synthetic_median, leak.dcr_holdout_median) == (0.0, 0.0)


def test_disjoint_tables_score_worst():
    real = table()
    other = real.assign(age=real["age"] + 1000, income=real["income"] + 1e6, city="paris", label="none")
    quality = fidelity(real, other, CATEGORICAL)
    assert {name: stat for name, (stat, _) in quality.columns.items()} == {"age": 1.0, "income": 1.0, "city": 1.0, "label": 1.0}
    assert quality.column_shapes == 0.0
    assert quality.pairs["city|label"][0] == pytest.approx(1.0)  # no joint category in common
    leak = privacy(real, real.iloc[:50], other, CATEGORICAL)
    assert leak.exact_copy_share == 0.0 and leak.holdout_match_share == 1.0  # holdout taken from train here
    assert leak.dcr_synthetic_median > 1.0 and leak.dcr_holdout_median == 0.0


def test_known_values():
    real = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "c": ["a", "a", "b", "b"]})
    # half the categories moved: TV 0.25; x shifted by one of four steps: KS 0.25; correlation flipped: diff 1
    synthetic = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", "b", "b", "b"]})
    quality = fidelity(real, synthetic, ["c"])
    assert quality.columns["x"][0] == pytest.approx(0.25) and quality.columns["c"][0] == pytest.approx(0.25)
    assert total_variation(pd.Series(["a", "b"]), pd.Series(["a", "a"])) == pytest.approx(0.5)
    up = pd.DataFrame({"x": [0.0, 1.0, 2.0], "y": [0.0, 1.0, 2.0]})
    down = pd.DataFrame({"x": [0.0, 1.0, 2.0], "y": [2.0, 1.0, 0.0]})
    assert fidelity(up, down, []).pairs["x|y"] == (pytest.approx(1.0), "correlation")
    # Gower: x spans 3 in training, so 0.3 away is 0.1 of it; a category mismatch is 1; two columns average
    rows = pd.DataFrame({"x": [0.3, 3.0, 1.0], "c": ["a", "a", "a"]})
    np.testing.assert_allclose(closest_distances(rows, real, ["c"]), [0.05, (2 / 3) / 2, 0.0])  # 3.0 is closest to (1, a)


def test_missing_values_are_a_value_of_their_own():
    train = pd.DataFrame({"x": [1.0, np.nan, 3.0], "c": ["a", None, "b"]})
    copies = train.iloc[[1]].reset_index(drop=True)
    leak = privacy(train, train.iloc[[0]], copies, ["c"])
    assert leak.exact_copy_share == 1.0 and leak.dcr_synthetic_median == 0.0
    assert closest_distances(pd.DataFrame({"x": [np.nan], "c": ["a"]}), train.iloc[[0]], ["c"])[0] >= 0.5


@pytest.mark.parametrize("model", ["logistic_regression", "random_forest"])
def test_sklearn_utility_learns_real_rows_and_not_shuffled_labels(model):
    train, test = table(400, seed=0), table(400, seed=1)
    assert sklearn_accuracy(train, test, "label", CATEGORICAL, model) >= 0.95
    shuffled = train.assign(label=np.random.default_rng(0).permutation(train["label"].to_numpy()))
    assert sklearn_accuracy(shuffled, test, "label", CATEGORICAL, model) <= 0.65
    one_class = train.assign(label="high")
    assert sklearn_accuracy(one_class, test, "label", CATEGORICAL, model) == pytest.approx(np.mean(test["label"] == "high"))
