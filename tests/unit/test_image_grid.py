"""Grids are readable: small images are upscaled by nearest neighbour to >= 28 px, and the classes of a
conditional model's samples are written in a margin (over columns, beside rows, as a title or per image)."""

import numpy as np
import torch

from mlgen.tracking.labelled_grid import (
    GridLabels,
    class_labels,
    labelled_grid,
    sample_grid,
    upscale,
)

CELL = 32 + 2  # an 8x8 digit upscaled 4x, plus make_grid's 2-pixel padding


def digits(n, side=8):
    return torch.rand(n, 1, side, side, generator=torch.Generator().manual_seed(0)) * 2 - 1


def bright(region):
    """Pixels of drawn text: the margin is black."""
    return int((np.asarray(region) > 128).any(axis=-1).sum())


def test_small_images_are_upscaled_by_nearest_neighbour_and_large_ones_kept():
    x = digits(3)
    big = upscale(x)
    assert big.shape == (3, 1, 32, 32)
    assert torch.equal(big[:, :, ::4, ::4], x) and torch.equal(big[:, :, 3::4, 3::4], x)  # 4x4 blocks of one value
    assert upscale(digits(2, side=28)).shape[-1] == 28 and upscale(digits(2, side=32)).shape[-1] == 32
    assert upscale(digits(2, side=10)).shape[-1] == 30


def test_unconditional_grid_has_no_margin():
    image = sample_grid(digits(20), nrow=10)
    assert image.size == (10 * CELL + 2, 2 * CELL + 2) and image.mode == "RGB"
    # the pixels are the upscaled samples: the top-left image's first 4x4 block has one value
    block = np.asarray(image)[2:6, 2:6, 0]
    assert (block == block[0, 0]).all()


def test_classes_in_turn_get_a_header_over_every_column():
    labels = torch.arange(20) % 10
    assert class_labels(labels, 10) == GridLabels(columns=[str(c) for c in range(10)])
    image = np.asarray(sample_grid(digits(20), nrow=10, labels=labels))
    margin = image.shape[0] - (2 * CELL + 2)
    assert image.shape[1] == 10 * CELL + 2 and 10 <= margin <= 30
    for column in range(10):  # text over every column, and the grid below unchanged
        assert bright(image[:margin, 2 + column * CELL: (column + 1) * CELL]) > 5
    assert np.array_equal(image[margin:], np.asarray(sample_grid(digits(20), nrow=10)))


def test_rows_of_one_class_get_row_labels_one_class_a_title_and_a_mix_a_caption_per_image():
    by_row = torch.arange(20) // 5
    assert class_labels(by_row, 5) == GridLabels(rows=["0", "1", "2", "3"])
    image = np.asarray(sample_grid(digits(20), nrow=5, labels=by_row))
    left = image.shape[1] - (5 * CELL + 2)
    assert image.shape[0] == 4 * CELL + 2 and left > 5
    for row in range(4):
        assert bright(image[2 + row * CELL: (row + 1) * CELL, :left]) > 5

    assert class_labels([7] * 6, 3) == GridLabels(title="class 7")
    titled = np.asarray(sample_grid(digits(6), nrow=3, labels=[7] * 6))
    assert titled.shape[1] == 3 * CELL + 2 and bright(titled[: titled.shape[0] - (2 * CELL + 2)]) > 20

    mixed = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])  # 8 classes in rows of 4: neither rows nor columns are one class
    assert class_labels(mixed, 4) == GridLabels(cells=[str(c) for c in range(8)])
    captioned = np.asarray(sample_grid(digits(8), nrow=4, labels=mixed))
    assert captioned.shape[1] == 4 * CELL + 2
    band = (captioned.shape[0] - 2 - 2 * CELL) // 2  # a caption strip above each image
    assert band > 10
    for i in range(8):
        y, x = 2 + (i // 4) * (CELL + band), 2 + (i % 4) * CELL
        assert bright(captioned[y: y + band, x: x + 32]) > 5


def test_reconstruction_rows_are_named():
    image = np.asarray(labelled_grid(digits(8), nrow=4, labels=GridLabels(rows=["data", "recon"])))
    left = image.shape[1] - (4 * CELL + 2)
    assert image.shape[0] == 2 * CELL + 2 and left > 20
    assert bright(image[2:CELL, :left]) > 10 and bright(image[CELL + 2: 2 * CELL, :left]) > 10
