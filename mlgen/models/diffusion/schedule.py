"""Noise schedules of DDPM: the betas and their running products alpha_bar_t = prod_{s<=t} (1 - beta_s).

`linear` is Ho et al. 2020's (beta from `beta_start` to `beta_end` over the timesteps); `cosine` is
Nichol & Dhariwal 2021's (alpha_bar follows cos^2, betas clipped at 0.999), which destroys less of a
small image at early timesteps. Computed in float64 (the products of 1,000 factors), stored in float32.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mlgen.config.checks import check_choice, check_int, check_number, require

SCHEDULES = ("linear", "cosine")
COSINE_OFFSET = 0.008  # s in Nichol & Dhariwal's alpha_bar(t) = cos^2((t/T + s) / (1 + s) * pi/2)
MAX_BETA = 0.999


def check_schedule(schedule: str, timesteps: int, beta_start: float, beta_end: float) -> None:
    """The schedule options, checked before anything is built."""
    check_choice("model.schedule", schedule, SCHEDULES)
    check_int("model.timesteps", timesteps, 2, 1000)
    if schedule == "linear":
        check_number("model.beta_start", beta_start, 0.0, True, 1.0, True, example=1e-4)
        check_number("model.beta_end", beta_end, 0.0, True, 1.0, True, example=0.02)
        require(beta_start < beta_end, "model.beta_end", beta_end, f"it must exceed model.beta_start={beta_start}",
                "e.g. model.beta_start=1e-4 model.beta_end=0.02 (Ho et al.'s values for 1,000 timesteps)")


def alphas_cumprod(schedule: str, timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> Tensor:
    """alpha_bar_t for t = 0 .. timesteps - 1 (float32)."""
    check_schedule(schedule, timesteps, beta_start, beta_end)
    if schedule == "linear":
        betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
    else:
        steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        bar = torch.cos((steps + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2
        betas = (1 - bar[1:] / bar[:-1]).clamp(max=MAX_BETA)
    return torch.cumprod(1 - betas, dim=0).float()
