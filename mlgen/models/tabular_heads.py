"""Output heads of tabular generative models, built from a table's layout (`${mlgen_table:layout}`).

An encoded row `[D]` is a sequence of spans (`mlgen.data.tabular_encoders.Span`): scalars ("value",
ending in tanh for mode-normalised columns or identity for quantile ones) and one-hots ("mode" of a
continuous column, "category" of a categorical one, ending in softmax). A net outputs `D` raw values;
these heads turn them into what each span means:

- `activate`: CTGAN's generator output: tanh / identity per scalar, Gumbel-softmax per one-hot;
- `log_likelihood`: TVAE's decoder likelihood: Gaussian per scalar (learned sigma), categorical per one-hot;
- `draw`: a row in data space for sampling: scalars as given, one category drawn per one-hot.

The layout arrives as plain data (a list of dicts), because models keep it in their hyper-parameters:
a checkpoint alone rebuilds the heads. Written by hand: no library maps a column layout to heads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from mlgen.errors import ConfigError

ONE_HOT = "softmax"
SCALAR_ACTIVATIONS = ("tanh", "identity")


class TableLayout:
    """Index sets of an encoded row's scalar and one-hot spans, checked against the row width `width`."""

    def __init__(self, layout: Sequence[Mapping[str, Any]] | None, width: int, model: str) -> None:
        if not layout:
            raise ConfigError(
                f"model.layout={layout!r} is invalid: {model} generates table rows and needs the table's column "
                "layout. Fix: train it on a table (data=breast_cancer, fair, wine or csv) with "
                "model.layout=${mlgen_table:layout}, as conf/model/tvae.yaml and ctgan.yaml do."
            )
        self.spans = [dict(span) for span in layout]
        stops = [int(s["start"]) + int(s["width"]) for s in self.spans]
        if max(stops) != width or any(s.get("activation") not in (*SCALAR_ACTIVATIONS, ONE_HOT) for s in self.spans):
            raise ConfigError(
                f"model.layout is invalid: it describes rows of {max(stops)} values, the data has {width} (or it names an "
                "unknown activation). Fix: leave model.layout=${mlgen_table:layout} and model.shape=${data.shape}."
            )
        scalars = [s for s in self.spans if s["activation"] in SCALAR_ACTIVATIONS]
        self.scalar_index = torch.tensor([int(s["start"]) for s in scalars], dtype=torch.long)
        self.tanh_mask = torch.tensor([s["activation"] == "tanh" for s in scalars], dtype=torch.bool)
        self.pieces = [(int(s["start"]), int(s["start"]) + int(s["width"]), s["activation"]) for s in self.spans]
        self.one_hots = [(start, stop) for start, stop, activation in self.pieces if activation == ONE_HOT]
        self.categories = [(start, stop) for (start, stop, _), s in zip(self.pieces, self.spans) if s["kind"] == "category"]
        self.width = width

    @property
    def num_scalars(self) -> int:
        return len(self.scalar_index)

    @property
    def category_width(self) -> int:
        """Slots of the categorical columns: the width of CTGAN's conditional vector."""
        return sum(stop - start for start, stop in self.categories)

    def scalars(self, rows: Tensor) -> Tensor:
        return rows[:, self.scalar_index.to(rows.device)]

    def scalar_means(self, raw: Tensor) -> Tensor:
        """The scalar outputs after their activation (tanh or identity)."""
        values = self.scalars(raw)
        return torch.where(self.tanh_mask.to(raw.device), torch.tanh(values), values)

    def activate(self, raw: Tensor, gumbels: Tensor, tau: float) -> Tensor:
        """CTGAN's output activations: scalars through tanh / identity, one-hots through Gumbel-softmax at
        temperature `tau` with the given standard Gumbel noise `[B, D]` (drawn by the caller, per the
        per-rank noise convention)."""
        parts = []
        for start, stop, activation in self.pieces:
            piece = raw[:, start:stop]
            if activation == ONE_HOT:
                piece = torch.softmax((piece + gumbels[:, start:stop]) / tau, dim=1)
            elif activation == "tanh":
                piece = torch.tanh(piece)
            parts.append(piece)
        return torch.cat(parts, dim=1)

    def log_likelihood(self, raw: Tensor, log_sigma: Tensor, x: Tensor) -> Tensor:
        """log p(x | raw) per row: Normal(activated mean, sigma) per scalar, categorical per one-hot."""
        ll = torch.distributions.Normal(self.scalar_means(raw), log_sigma.exp()).log_prob(self.scalars(x)).sum(1)
        for start, stop in self.one_hots:
            ll = ll + (F.log_softmax(raw[:, start:stop], dim=1) * x[:, start:stop]).sum(1)
        return ll

    def draw(self, scalars: Tensor, raw: Tensor) -> Tensor:
        """Rows in data space: the given scalar values, and per one-hot a category drawn from softmax(raw)."""
        out = torch.zeros_like(raw)
        out[:, self.scalar_index.to(raw.device)] = scalars
        for start, stop in self.one_hots:
            choice = torch.multinomial(torch.softmax(raw[:, start:stop].float(), dim=1), 1)
            out[:, start:stop] = F.one_hot(choice[:, 0], stop - start).to(raw.dtype)
        return out

    def most_likely(self, raw: Tensor) -> Tensor:
        """Rows in data space: activated scalars and the most likely category of each one-hot."""
        out = torch.zeros_like(raw)
        out[:, self.scalar_index.to(raw.device)] = self.scalar_means(raw)
        for start, stop in self.one_hots:
            out[:, start:stop] = F.one_hot(raw[:, start:stop].argmax(1), stop - start).to(raw.dtype)
        return out
