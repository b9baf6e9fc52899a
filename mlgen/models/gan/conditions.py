"""CTGAN's conditional vector and training-by-sampling (Xu et al. 2019, section 4.3), by hand (no
library offers them apart from CTGAN's own synthesizer).

Each row of a training batch picks one categorical column uniformly, then one of its categories with
probability proportional to log(1 + its training count), so rare categories are seen far more often
than in the data; the conditional vector is that category's one-hot over all categorical slots, and the
real row is drawn uniformly among the training rows that have the category. The real row's target
class comes with it, so the pairs (category, class) keep their joint distribution in the data.

Every draw follows the per-rank noise convention (`global_batch_rows`): N DDP ranks draw the global
batch's choices and keep their interleaved rows, so they train as one process on the global batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mlgen.distributed.noise import global_batch_rows


class TrainingBySampling:
    """Draws conditions and matching real rows from the training split.

    Args:
        x, y: the training rows `[N, D]` and their classes `[N]`.
        categories: `(start, stop)` of each categorical one-hot span in a row.
    """

    def __init__(self, x: Tensor, y: Tensor, categories: list[tuple[int, int]]) -> None:
        self.x, self.y = x, y.long()
        self.categories = categories
        self.widths = [stop - start for start, stop in categories]
        self.offsets = torch.tensor([0, *self.widths]).cumsum(0)[:-1]
        if not categories:
            return
        slots = torch.stack([x[:, start:stop].argmax(1) for start, stop in categories], dim=1)  # [N, J]
        widest = max(self.widths)
        counts = torch.zeros(len(categories), widest)
        for j, width in enumerate(self.widths):
            counts[j, :width] = torch.bincount(slots[:, j], minlength=width)[:width].float()
        self.counts = counts
        self.log_frequency = torch.log1p(counts)  # zero for absent categories, which are never picked
        # rows sorted by their slot in span j; rows with slot c of span j are order[j, first[j, c]:][:counts[j, c]]
        self.order = torch.argsort(slots, dim=0, stable=True).T.contiguous()  # [J, N]
        self.first = torch.cat([torch.zeros(len(categories), 1), counts.cumsum(1)[:, :-1]], dim=1).long()

    @property
    def width(self) -> int:
        """Width of the conditional vector (all categorical slots)."""
        return sum(self.widths)

    def to(self, device: torch.device) -> TrainingBySampling:
        for name in ("x", "y", "offsets", "counts", "log_frequency", "order", "first"):
            if hasattr(self, name):
                setattr(self, name, getattr(self, name).to(device))
        return self

    def draw(self, n: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """This rank's `n` rows of a global batch: real rows `[n, D]`, their classes `[n]`, the conditional
        vectors `[n, width]`, and each row's chosen span and slot (`[n]` each; empty spans: all zeros)."""
        choice = global_batch_rows(self._choose, n)
        span, slot, row = choice.unbind(1)
        return self.x[row], self.y[row], self.condition(span, slot), span, slot

    def condition(self, span: Tensor, slot: Tensor) -> Tensor:
        """One-hot conditional vectors `[n, width]` of the given (span, slot) pairs."""
        if not self.categories:
            return torch.zeros(len(span), 0, device=span.device)
        return F.one_hot(self.offsets.to(span.device)[span] + slot, self.width).float()

    def _choose(self, m: int) -> Tensor:
        """`[m, 3]`: span, slot (log-frequency) and a training row having that slot, per row."""
        device = self.x.device
        if not self.categories:
            row = torch.randint(len(self.x), (m,), device=device)
            return torch.stack([torch.zeros_like(row), torch.zeros_like(row), row], dim=1)
        span = torch.randint(len(self.categories), (m,), device=device)
        slot = torch.multinomial(self.log_frequency[span], 1)[:, 0]
        within = (torch.rand(m, device=device) * self.counts[span, slot]).long()
        row = self.order[span, self.first[span, slot] + within]
        return torch.stack([span, slot, row], dim=1)


def class_condition_counts(x: Tensor, y: Tensor, categories: list[tuple[int, int]], num_classes: int) -> Tensor:
    """`[num_classes, width]`: how often each categorical slot occurs among the training rows of each
    class; sampling draws the conditional vector from these (the data's own frequencies, as CTGAN does)."""
    slots = torch.cat([x[:, start:stop] for start, stop in categories], dim=1) if categories else x[:, :0]
    return torch.zeros(num_classes, slots.shape[1], device=x.device).index_add_(0, y.long(), slots.float())
