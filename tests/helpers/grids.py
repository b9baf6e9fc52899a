"""What every image grid mlgen writes looks like: images upscaled to >= 28 px a side (8x8 digits: 32),
2-pixel padding, and where labels are drawn (a conditional model's classes, reconstruction rows) a margin
with white text on black."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image


def cell(side: int) -> int:
    """Pixels per image in a grid, padding included: the side upscaled by a whole factor to >= 28."""
    return side * math.ceil(28 / side) + 2


def assert_readable_grid(path: Path, side: int, columns: int, rows: int, margin: str | None = None) -> None:
    """`margin`: None (no labels), "top" (column headers or a title), "captions" (a strip over each image
    with its class) or "left" (row labels)."""
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    height, width = pixels.shape[:2]
    body_w, body_h = columns * cell(side) + 2, rows * cell(side) + 2
    if margin is None:
        assert (width, height) == (body_w, body_h)
        return
    left = margin == "left"
    extra = (width - body_w) if left else (height - body_h)
    assert (height, width)[not left] == (body_h, body_w)[not left] and extra >= 10, (width, height)
    text = pixels[:, :extra] if left else pixels[: extra // rows if margin == "captions" else extra]
    assert (text > 128).any(axis=-1).sum() > 5  # the labels are drawn
