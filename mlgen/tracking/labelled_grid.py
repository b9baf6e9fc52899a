"""A readable PNG grid of images: small images upscaled by nearest neighbour, class labels in a margin.

One function draws every grid mlgen writes (the per-epoch grids of `ImageGrid`, `mlgen-sample`'s PNG), so
they look alike. torchvision's `make_grid` lays the images out; torchvision and PIL have no labelled grid,
so the margins and captions (PIL's `ImageDraw`, its built-in font: nothing is downloaded) are drawn here.
Where the labels go follows how they vary: conditional models draw the classes in turn (0, 1, ..., 0, 1,
...), so with `nrow = num_classes` every column holds one class and gets a header; a grid whose rows each
hold one class gets row labels; one class everywhere gets a title; any other mix a caption over each image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor
from torchvision.utils import make_grid

MIN_SIDE = 28  # images smaller than this many pixels (8x8 digits) are upscaled by a whole factor
PADDING = 2  # make_grid's padding between images, in pixels
TEXT = (255, 255, 255)  # on make_grid's black padding


@dataclass(frozen=True)
class GridLabels:
    """Text for the grid's margins: one per column, one per row, one per image, or a title."""

    columns: Sequence[str] = ()
    rows: Sequence[str] = ()
    cells: Sequence[str] = ()
    title: str = ""


def class_labels(labels: Tensor | Sequence[int] | None, nrow: int) -> GridLabels:
    """Where the classes of images laid out `nrow` to a row are written (see the module docstring)."""
    if labels is None:
        return GridLabels()
    values = [int(v) for v in labels]
    if len(set(values)) == 1:
        return GridLabels(title=f"class {values[0]}")
    columns = [values[c::nrow] for c in range(min(nrow, len(values)))]
    if all(len(set(column)) == 1 for column in columns):
        return GridLabels(columns=[str(column[0]) for column in columns])
    rows = [values[r:r + nrow] for r in range(0, len(values), nrow)]
    if all(len(set(row)) == 1 for row in rows):
        return GridLabels(rows=[str(row[0]) for row in rows])
    return GridLabels(cells=[str(v) for v in values])


def upscale(images: Tensor, min_side: int = MIN_SIDE) -> Tensor:
    """`[N, C, H, W]` images enlarged by the smallest whole factor that makes both sides >= `min_side`,
    nearest neighbour so every pixel stays a sharp square."""
    factor = max(1, math.ceil(min_side / min(images.shape[-2:])))
    return images if factor == 1 else F.interpolate(images, scale_factor=factor, mode="nearest")


def as_uint8(images: Tensor) -> Tensor:
    """Images in [-1, 1] as uint8 pixels, rounded as `save_image` rounds."""
    return images.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).add_(0.5).clamp_(0, 255).to(torch.uint8)


def labelled_grid(images: Tensor, nrow: int, labels: GridLabels = GridLabels(), min_side: int = MIN_SIDE) -> Image.Image:
    """An RGB grid of `[N, C, H, W]` images in [-1, 1], `nrow` to a row, upscaled and labelled."""
    images = upscale(images.detach().float().cpu(), min_side)
    side = min(images.shape[-2:])
    font = ImageFont.load_default(size=max(11, min(24, round(side * 0.45))))
    text_height = _text_size(font, "0123456789")[1]
    band = text_height + 4 if labels.cells else 0  # a caption strip above every image
    if band:
        images = F.pad(images, (0, 0, band, 0), value=-1.0)
    body = Image.fromarray(make_grid(as_uint8(images), nrow=nrow, padding=PADDING).permute(1, 2, 0).numpy())
    left = max((_text_size(font, t)[0] for t in labels.rows), default=0) + 8 if labels.rows else 0
    top = text_height + 6 if labels.columns or labels.title else 0
    canvas = Image.new("RGB", (body.width + left, body.height + top))
    canvas.paste(body, (left, top))
    draw = ImageDraw.Draw(canvas)
    step_x, step_y = images.shape[-1] + PADDING, images.shape[-2] + PADDING
    for c, text in enumerate(labels.columns):
        _centred(draw, font, text, left + PADDING + c * step_x + images.shape[-1] / 2, top / 2)
    for r, text in enumerate(labels.rows):
        _centred(draw, font, text, left / 2, top + PADDING + r * step_y + images.shape[-2] / 2)
    for i, text in enumerate(labels.cells):
        x, y = PADDING + (i % nrow) * step_x, PADDING + (i // nrow) * step_y
        _centred(draw, font, text, x + images.shape[-1] / 2, y + band / 2)
    if labels.title:
        _centred(draw, font, labels.title, canvas.width / 2, top / 2)
    return canvas


def sample_grid(images: Tensor, nrow: int, labels: Tensor | Sequence[int] | None = None,
                min_side: int = MIN_SIDE) -> Image.Image:
    """The grid of samples every mlgen command writes; `labels`: the class of each image (conditional models)."""
    return labelled_grid(images, nrow, class_labels(labels, nrow), min_side)


def _text_size(font: ImageFont.ImageFont | ImageFont.FreeTypeFont, text: str) -> tuple[int, int]:
    left, top, right, bottom = font.getbbox(text)
    return int(right - left), int(bottom - top)


def _centred(draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, text: str, x: float, y: float) -> None:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    draw.text((round(x - (left + right) / 2), round(y - (top + bottom) / 2)), text, fill=TEXT, font=font)
