"""Diffusion family: DDPM training, DDIM sampling, classifier-free guidance (`mlgen.models.diffusion.module`)."""

from mlgen.models.diffusion.module import DDPM

__all__ = ["DDPM"]
