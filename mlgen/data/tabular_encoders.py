"""Reversible encoders of one table column, fitted on the training split.

- `ModeNormalizer` (continuous and integer columns, `data.continuous=mode`): CTGAN's mode-specific
  normalisation (Xu et al. 2019). A Bayesian Gaussian mixture (scikit-learn, CTGAN's settings:
  Dirichlet-process prior 0.001, at most `max_modes` components, those of weight > `weight_threshold`
  kept) gives the column's modes; a value becomes the one-hot of its mode and the scalar
  `(x - mean_k) / (4 std_k)`, in [-1, 1] for values within 4 std of their mode. CTGAN samples the mode
  from the posterior; here it is the most likely one, so an encoded table is the same on every rank
  and run, and decoding an encoded value gives it back.
- `QuantileNormalizer` (`data.continuous=quantile`): the column's quantiles map it to a standard
  normal scalar (scikit-learn's QuantileTransformer with a normal output); exact inside the training
  range, clamped to it outside.
- `OneHot` (categorical columns): one slot per training category, sorted; a category the training
  split lacks encodes as all zeros (scikit-learn's `handle_unknown="ignore"`) and cannot be decoded.

A column with missing values gets one more one-hot slot, "missing" (its scalar is 0). Every encoder
is a dataclass of plain numbers and strings (`state()`), so a fitted transform can be stored in a
checkpoint and rebuilt without pickles; that is why the transforms are computed here from those
numbers rather than by keeping scikit-learn objects.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

MISSING = "missing"
STD_MULTIPLIER = 4.0  # CTGAN's: 4 std of a mode map to [-1, 1]
NORMAL_BOUND = 1e-7  # as scikit-learn's QuantileTransformer: uniform values clipped to [b, 1 - b]


@dataclass(frozen=True)
class Span:
    """A slice `[start, start + width)` of an encoded row. `kind`: "value" (one scalar), "mode" (one-hot
    of a continuous column's modes) or "category" (one-hot of a categorical column). `activation` is
    what an output head should end with: "tanh" (mode-normalised scalars), "identity" (quantile
    scalars) or "softmax" (one-hots). `names` name the one-hot slots."""

    column: str
    kind: str
    start: int
    width: int
    activation: str
    names: tuple[str, ...] = ()

    @property
    def stop(self) -> int:
        return self.start + self.width


def _one_hot(index: np.ndarray, width: int) -> np.ndarray:
    """Rows of `width` zeros with a 1 at `index` (no 1 where index is -1)."""
    out = np.zeros((len(index), width), dtype=np.float32)
    known = index >= 0
    out[np.flatnonzero(known), index[known]] = 1.0
    return out


@dataclass(frozen=True)
class ModeNormalizer:
    means: list[float]
    stds: list[float]
    weights: list[float]
    missing: bool

    @classmethod
    def fit(cls, values: np.ndarray, missing: bool, max_modes: int, weight_threshold: float, seed: int) -> ModeNormalizer:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import BayesianGaussianMixture

        mixture = BayesianGaussianMixture(
            n_components=min(max_modes, len(values)),
            weight_concentration_prior_type="dirichlet_process",
            weight_concentration_prior=0.001,
            random_state=seed,
        )
        with warnings.catch_warnings():
            # CTGAN's setting stops at 100 iterations; unconverged modes still normalise exactly
            warnings.simplefilter("ignore", ConvergenceWarning)
            mixture.fit(values.reshape(-1, 1))
        keep = mixture.weights_ > weight_threshold
        weights = mixture.weights_[keep]
        return cls(mixture.means_[keep, 0].tolist(), np.sqrt(mixture.covariances_[keep].reshape(-1)).tolist(),
                   (weights / weights.sum()).tolist(), missing)

    @property
    def width(self) -> int:
        return 1 + len(self.means) + self.missing

    def spans(self, column: str, start: int) -> list[Span]:
        names = tuple(f"mode {k}" for k in range(len(self.means))) + ((MISSING,) if self.missing else ())
        return [Span(column, "value", start, 1, "tanh"), Span(column, "mode", start + 1, len(names), "softmax", names)]

    def encode(self, values: np.ndarray) -> np.ndarray:
        absent = np.isnan(values)
        x = np.where(absent, 0.0, values)[:, None]
        means, stds = np.asarray(self.means), np.asarray(self.stds)
        # the most likely mode: log weight + Gaussian log density (constants cancel in the argmax)
        log_posterior = np.log(self.weights) - np.log(stds) - 0.5 * ((x - means) / stds) ** 2
        mode = log_posterior.argmax(axis=1)
        scalar = (x[:, 0] - means[mode]) / (STD_MULTIPLIER * stds[mode])
        mode = np.where(absent, len(self.means), mode)  # the "missing" slot
        scalar = np.where(absent, 0.0, scalar)
        return np.concatenate([scalar[:, None].astype(np.float32), _one_hot(mode, self.width - 1)], axis=1)

    def decode(self, block: np.ndarray) -> np.ndarray:
        mode = block[:, 1:].argmax(axis=1)
        absent = mode >= len(self.means)
        mode = np.where(absent, 0, mode)
        values = block[:, 0].astype(np.float64) * STD_MULTIPLIER * np.asarray(self.stds)[mode] + np.asarray(self.means)[mode]
        return np.where(absent, np.nan, values)


@dataclass(frozen=True)
class QuantileNormalizer:
    quantiles: list[float]
    references: list[float]
    missing: bool

    @classmethod
    def fit(cls, values: np.ndarray, missing: bool, n_quantiles: int, seed: int) -> QuantileNormalizer:
        from sklearn.preprocessing import QuantileTransformer

        fitted = QuantileTransformer(n_quantiles=min(n_quantiles, len(values)), output_distribution="normal",
                                     subsample=None, random_state=seed).fit(values.reshape(-1, 1))
        return cls(fitted.quantiles_[:, 0].tolist(), fitted.references_.tolist(), missing)

    @property
    def width(self) -> int:
        return 1 + 2 * self.missing

    def spans(self, column: str, start: int) -> list[Span]:
        value = Span(column, "value", start, 1, "identity")
        return [value, Span(column, "mode", start + 1, 2, "softmax", ("value", MISSING))] if self.missing else [value]

    def encode(self, values: np.ndarray) -> np.ndarray:
        absent = np.isnan(values)
        x = np.where(absent, self.quantiles[0], values)
        q, r = np.asarray(self.quantiles), np.asarray(self.references)
        # scikit-learn's two-sided interpolation, so that tied quantiles (repeated values) map to the
        # middle of their plateau
        uniform = 0.5 * (np.interp(x, q, r) - np.interp(-x, -q[::-1], -r[::-1]))
        scalar = np.where(absent, 0.0, ndtri(np.clip(uniform, NORMAL_BOUND, 1 - NORMAL_BOUND)))
        out = scalar[:, None].astype(np.float32)
        if self.missing:
            out = np.concatenate([out, _one_hot(absent.astype(np.int64), 2)], axis=1)
        return out

    def decode(self, block: np.ndarray) -> np.ndarray:
        values = np.interp(ndtr(block[:, 0].astype(np.float64)), self.references, self.quantiles)
        if self.missing:
            values = np.where(block[:, 1:3].argmax(axis=1) == 1, np.nan, values)
        return values


@dataclass(frozen=True)
class OneHot:
    categories: list[Any]
    missing: bool

    @classmethod
    def fit(cls, values: Any, missing: bool) -> OneHot:
        found = [v.item() if hasattr(v, "item") else v for v in values.dropna().unique()]
        try:
            categories = sorted(found)
        except TypeError:  # values of different types
            categories = sorted(found, key=repr)
        return cls(categories, missing)

    @property
    def width(self) -> int:
        return len(self.categories) + self.missing

    def spans(self, column: str, start: int) -> list[Span]:
        names = tuple(str(c) for c in self.categories) + ((MISSING,) if self.missing else ())
        return [Span(column, "category", start, self.width, "softmax", names)]

    def encode(self, values: Any) -> np.ndarray:
        import pandas as pd

        index = pd.Categorical(values, categories=self.categories).codes.astype(np.int64)
        if self.missing:
            index = np.where(values.isna().to_numpy(), len(self.categories), index)
        return _one_hot(index, self.width)

    def decode(self, block: np.ndarray) -> np.ndarray:
        slots = np.array([*self.categories, *([np.nan] if self.missing else [])], dtype=object)
        return slots[block.argmax(axis=1)]


ENCODERS = {"mode": ModeNormalizer, "quantile": QuantileNormalizer, "onehot": OneHot}
Encoder = ModeNormalizer | QuantileNormalizer | OneHot


def encoder_state(encoder: Encoder) -> dict[str, Any]:
    """Plain numbers and strings: safe to store in a checkpoint."""
    name = next(key for key, cls in ENCODERS.items() if isinstance(encoder, cls))
    return {"encoder": name, **asdict(encoder)}


def encoder_from_state(state: dict[str, Any]) -> Encoder:
    fields = dict(state)
    return ENCODERS[fields.pop("encoder")](**fields)
