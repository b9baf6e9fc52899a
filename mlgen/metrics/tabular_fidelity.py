"""How closely synthetic rows follow the real table's distribution, column by column and pair by pair.

The scores follow SDMetrics' quality report (so mlgen's numbers read like SDV's): a column's shape
score is 1 - KS statistic (continuous and integer columns) or 1 - total-variation distance
(categorical); a pair's trend score is 1 - |corr_real - corr_synthetic| / 2 (Pearson, two numeric
columns) or 1 - total-variation distance of the contingency tables (any other pair; numbers are cut
into the real column's deciles first). The aggregate is the mean of the two means, in [0, 1], 1 for
identical distributions. SDMetrics itself is BSL-licensed and not a dependency of mlgen, hence these
few lines by hand; scipy's KS test does the one statistic it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

BINS = 10


@dataclass(frozen=True)
class Fidelity:
    """`columns`: {column: (statistic, "ks" | "tv")}; `pairs`: {"a|b": (difference, "correlation" | "contingency")}."""

    columns: dict[str, tuple[float, str]]
    pairs: dict[str, tuple[float, str]]

    @property
    def column_shapes(self) -> float:
        return float(np.mean([1.0 - s for s, _ in self.columns.values()])) if self.columns else 1.0

    @property
    def pair_trends(self) -> float:
        return float(np.mean([1.0 - d for d, _ in self.pairs.values()])) if self.pairs else 1.0

    @property
    def score(self) -> float:
        return (self.column_shapes + self.pair_trends) / 2.0


def total_variation(real: pd.Series, synthetic: pd.Series) -> float:
    """Half the L1 distance between the two category frequency vectors (missing values are a category)."""
    p = real.astype("object").fillna("<missing>").value_counts(normalize=True)
    q = synthetic.astype("object").fillna("<missing>").value_counts(normalize=True)
    return float(0.5 * p.sub(q, fill_value=0.0).abs().sum())


def ks_statistic(real: pd.Series, synthetic: pd.Series) -> float:
    """Two-sample Kolmogorov-Smirnov statistic of the non-missing values (1 when one side has none)."""
    a, b = real.dropna().to_numpy(dtype="float64"), synthetic.dropna().to_numpy(dtype="float64")
    if not len(a) or not len(b):
        return 0.0 if len(a) == len(b) else 1.0
    return float(ks_2samp(a, b).statistic)


def _as_categories(real: pd.Series, synthetic: pd.Series, numeric: bool) -> tuple[pd.Series, pd.Series]:
    """Numbers cut at the real column's deciles (the same edges for both tables); categories as they are."""
    if not numeric:
        return real.astype("object").fillna("<missing>"), synthetic.astype("object").fillna("<missing>")
    edges = np.unique(np.nanquantile(real.to_numpy(dtype="float64"), np.linspace(0, 1, BINS + 1)[1:-1]))

    def cut(s: pd.Series) -> pd.Series:
        values = s.to_numpy(dtype="float64")
        return pd.Series(np.where(np.isnan(values), -1, np.searchsorted(edges, values, side="right")), index=s.index)

    return cut(real), cut(synthetic)


def contingency_difference(real: pd.DataFrame, synthetic: pd.DataFrame, a: str, b: str, numeric: set[str]) -> float:
    """Total-variation distance between the joint frequencies of columns `a` and `b`."""
    ra, sa = _as_categories(real[a], synthetic[a], a in numeric)
    rb, sb = _as_categories(real[b], synthetic[b], b in numeric)
    p = pd.Series(list(zip(ra, rb))).value_counts(normalize=True)
    q = pd.Series(list(zip(sa, sb))).value_counts(normalize=True)
    return float(0.5 * p.sub(q, fill_value=0.0).abs().sum())


def correlation_difference(real: pd.DataFrame, synthetic: pd.DataFrame, a: str, b: str) -> float:
    """|Pearson(real) - Pearson(synthetic)| / 2, in [0, 1]; a constant column correlates 0."""
    def corr(frame: pd.DataFrame) -> float:
        value = frame[[a, b]].astype("float64").corr().iloc[0, 1]
        return 0.0 if np.isnan(value) else float(value)

    return abs(corr(real) - corr(synthetic)) / 2.0


def fidelity(real: pd.DataFrame, synthetic: pd.DataFrame, categorical: Sequence[str]) -> Fidelity:
    """Shape of every column of `real` and trend of every pair of them; `categorical` names the
    categorical columns (the target among them if it is a column), all others are numbers."""
    names = list(real.columns)
    missing = sorted(set(names) - set(synthetic.columns))
    if missing:
        raise ValueError(f"the synthetic table lacks the real table's columns {missing}")
    numeric = set(names) - set(categorical)
    columns = {
        n: (ks_statistic(real[n], synthetic[n]), "ks") if n in numeric else (total_variation(real[n], synthetic[n]), "tv")
        for n in names
    }
    pairs = {}
    for a, b in combinations(names, 2):
        if a in numeric and b in numeric:
            pairs[f"{a}|{b}"] = (correlation_difference(real, synthetic, a, b), "correlation")
        else:
            pairs[f"{a}|{b}"] = (contingency_difference(real, synthetic, a, b, numeric), "contingency")
    return Fidelity(columns, pairs)
