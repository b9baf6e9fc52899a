"""DDIM sampling (Song et al. 2021) from a noise-prediction model, with any number of steps.

`eta` = 0 gives the deterministic DDIM sampler, `eta` = 1 with every timestep DDPM's ancestral
sampler; in between, a share of the fresh noise. Written by hand (a few lines; diffusers'
schedulers would add a dependency for them): see diffusers' `DDIMScheduler.step` for the same update.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

NoiseFn = Callable[..., Tensor]  # (n, *dims) -> standard normal, as `GenerativeModule.noise`
Denoiser = Callable[[Tensor, Tensor], Tensor]  # (x_t, t) -> predicted noise


def ddim_timesteps(timesteps: int, steps: int) -> Tensor:
    """`steps` timesteps from `timesteps - 1` down to 0, evenly spaced (distinct while steps <= timesteps)."""
    return torch.linspace(timesteps - 1, 0, steps, dtype=torch.float64).round().long()


@torch.no_grad()
def ddim_sample(predict_noise: Denoiser, noise: NoiseFn, shape: Sequence[int], alphas_cumprod: Tensor,
                steps: int, eta: float = 0.0, clip: bool = True) -> Tensor:
    """Samples `[n, *shape[1:]]` (`shape = [n, ...]`) denoised from pure noise in `steps` steps.

    `clip` clamps each predicted x_0 to the data range [-1, 1] (images), and re-derives the noise from it.
    """
    n, dims = shape[0], tuple(shape[1:])
    x = noise(n, *dims)
    ts = ddim_timesteps(len(alphas_cumprod), steps).tolist()
    for i, t in enumerate(ts):
        bar = alphas_cumprod[t]
        bar_prev = alphas_cumprod[ts[i + 1]] if i + 1 < len(ts) else torch.ones_like(bar)
        eps = predict_noise(x, torch.full((n,), t, device=x.device, dtype=torch.long))
        x0 = (x - (1 - bar).sqrt() * eps) / bar.sqrt()
        if clip:
            x0 = x0.clamp(-1, 1)
            eps = (x - bar.sqrt() * x0) / (1 - bar).sqrt()
        sigma = eta * ((1 - bar_prev) / (1 - bar) * (1 - bar / bar_prev)).sqrt()
        x = bar_prev.sqrt() * x0 + (1 - bar_prev - sigma**2).clamp(min=0).sqrt() * eps
        if eta > 0 and i + 1 < len(ts):
            x = x + sigma * noise(n, *dims)
    return x.clamp(-1, 1) if clip else x
