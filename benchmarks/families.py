"""What the benchmark trains for each model family: its config and the plain-PyTorch step that does
the same work as the LightningModule's training step (same nets, loss and optimizer)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from mlgen.utils.instantiate import instantiate_model

Step = Callable[[torch.Tensor, torch.Tensor], None]


@dataclass(frozen=True)
class Family:
    overrides: tuple[str, ...]
    plain_step: Callable[[Any, torch.device], Step]


def classifier_step(cfg: Any, device: torch.device) -> Step:
    model = instantiate_model(cfg.model).to(device).train()
    optimizer = model.make_optimizer(model.hparams.optimizer, model.parameters())

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        loss = F.cross_entropy(model.net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


FAMILIES: dict[str, Family] = {
    "classifier": Family(("model=classifier",), classifier_step),
}
