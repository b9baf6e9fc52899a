"""Does a generator copy its training rows? Distances to the closest training record (DCR) and exact
copies, each against the baseline of real holdout rows, which never went into training: a synthetic
table is no more revealing than fresh real data when its rows sit as far from the training rows as
holdout rows do and copy training rows no more often than holdout rows happen to match them (coarsely
coded tables have such matches naturally).

Distance: Gower's, by hand (no library computes it on mixed tables in batches): the mean over columns
of |a - b| / range for numbers (range of the training column) and 0/1 for categories; a missing
number is its own value (distance 1 to any number, 0 to another missing one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch


@dataclass(frozen=True)
class Privacy:
    dcr_synthetic_median: float
    dcr_holdout_median: float
    exact_copy_share: float  # synthetic rows equal to some training row
    holdout_match_share: float  # holdout rows equal to some training row

    @property
    def dcr_ratio(self) -> float:
        """Median DCR of synthetic rows over that of holdout rows (>= 1: no closer than fresh data)."""
        return self.dcr_synthetic_median / self.dcr_holdout_median if self.dcr_holdout_median > 0 else float("inf")


def gower_features(frame: pd.DataFrame, train: pd.DataFrame, categorical: Sequence[str]) -> torch.Tensor:
    """Rows of `frame` (whose first rows are `train`'s, so both share one coding) as vectors whose
    L1 distance divided by the number of columns is Gower's distance."""
    blocks = []
    for name in train.columns:
        if name in categorical:
            codes, levels = pd.factorize(frame[name].astype("object").fillna("<missing>").astype(str))
            one_hot = np.zeros((len(frame), len(levels)), dtype=np.float64)
            one_hot[np.arange(len(frame)), codes] = 0.5  # two mismatching slots add up to 1
            blocks.append(one_hot)
        else:
            column = train[name].to_numpy(dtype="float64")
            low, span = (np.nanmin(column), np.nanmax(column) - np.nanmin(column)) if (~np.isnan(column)).any() else (0.0, 1.0)
            values = (frame[name].to_numpy(dtype="float64") - low) / (span if span > 0 else 1.0)
            is_missing = np.isnan(values)
            # a missing value: scalar 0 plus an indicator 1, so it is at distance >= 1 from any number
            blocks.append(np.stack([np.where(is_missing, 0.0, values), is_missing.astype(np.float64)], axis=1))
    return torch.from_numpy(np.concatenate(blocks, axis=1))


def closest_distances(rows: pd.DataFrame, train: pd.DataFrame, categorical: Sequence[str], chunk: int = 1024) -> np.ndarray:
    """Gower distance of each of `rows` to its closest row of `train`."""
    both = gower_features(pd.concat([train, rows[list(train.columns)]], ignore_index=True), train, categorical)
    reference, queries = both[: len(train)], both[len(train):]
    out = [torch.cdist(part, reference, p=1).min(dim=1).values for part in queries.split(chunk)]
    return (torch.cat(out) / len(train.columns)).numpy() if out else np.zeros(0)


def match_share(rows: pd.DataFrame, train: pd.DataFrame) -> float:
    """Share of `rows` equal in every column to some row of `train`."""
    if not len(rows):
        return 0.0
    seen = set(train.astype("object").itertuples(index=False, name=None))
    return float(np.mean([row in seen for row in rows[list(train.columns)].astype("object").itertuples(index=False, name=None)]))


def privacy(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, categorical: Sequence[str]) -> Privacy:
    """DCR medians and exact-match shares of synthetic rows and of real holdout rows, both against `train`."""
    def clean(frame: pd.DataFrame) -> pd.DataFrame:  # NaN != NaN would hide copies of rows with missing values
        return frame[list(train.columns)].astype("object").where(frame[list(train.columns)].notna(), "<missing>")

    return Privacy(
        dcr_synthetic_median=float(np.median(closest_distances(synthetic, train, categorical))),
        dcr_holdout_median=float(np.median(closest_distances(holdout, train, categorical))),
        exact_copy_share=match_share(clean(synthetic), clean(train)),
        holdout_match_share=match_share(clean(holdout), clean(train)),
    )
