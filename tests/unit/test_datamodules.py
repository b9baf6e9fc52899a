"""Datamodules: real loaders on small files, fixed splits, [-1, 1] scaling, clear errors."""

from __future__ import annotations

import pytest
import torch

from mlgen.data.cifar import CIFAR10DataModule, random_crop_flip
from mlgen.data.digits import DigitsDataModule
from mlgen.data.mnist import MNISTDataModule
from mlgen.errors import ConfigError, DataError


def _first_batch(dm, split="train"):
    dm.setup("fit")
    return next(iter(getattr(dm, f"{split}_dataloader")()))


def test_digits_batches_scaled_to_unit_range_with_fixed_split():
    dm = DigitsDataModule(batch_size=32)
    x, y = _first_batch(dm)
    assert x.shape == (32, 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.long
    assert x.min() >= -1 and x.max() <= 1 and x.min() == -1 and x.max() == 1
    sizes = {k: len(v) for k, v in dm.datasets.items()}
    assert sizes == {"train": 1294, "val": 144, "test": 359}
    again = DigitsDataModule(batch_size=32)
    again.setup("fit")
    assert torch.equal(dm.datasets["val"].tensors[0], again.datasets["val"].tensors[0])
    other_seed = DigitsDataModule(batch_size=32, split_seed=1)
    other_seed.setup("fit")
    assert not torch.equal(dm.datasets["val"].tensors[0], other_seed.datasets["val"].tensors[0])
    assert torch.equal(dm.datasets["test"].tensors[0], other_seed.datasets["test"].tensors[0])


def test_train_fraction_and_binarize():
    dm = DigitsDataModule(train_fraction=0.1, binarize=True)
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 129
    assert set(dm.datasets["train"].tensors[0].unique().tolist()) == {-1.0, 1.0}


@pytest.mark.parametrize("variant", ["mnist", "fashion_mnist", "kmnist"])
def test_mnist_family_reads_idx_files_through_torchvision(variant, mnist_like_root):
    dm = MNISTDataModule(variant=variant, root=str(mnist_like_root), batch_size=16, val_fraction=0.1)
    x, y = _first_batch(dm)
    assert x.shape == (16, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert {k: len(v) for k, v in dm.datasets.items()} == {"train": 180, "val": 20, "test": 100}


def test_missing_mnist_names_folder_files_and_flag(tmp_path):
    dm = MNISTDataModule(root=str(tmp_path / "nowhere"))
    with pytest.raises(DataError) as err:
        dm.setup("fit")
    message = str(err.value)
    assert str(tmp_path / "nowhere") in message
    assert "MNIST/raw/train-images-idx3-ubyte" in message and "data.download=true" in message


def test_cifar10_reads_pickles_through_torchvision(cifar_root):
    dm = CIFAR10DataModule(root=str(cifar_root), batch_size=8, val_fraction=0.1)
    x, y = _first_batch(dm)
    assert x.shape == (8, 3, 32, 32) and x.min() >= -1 and x.max() <= 1
    assert len(dm.datasets["train"]) + len(dm.datasets["val"]) == 100 and len(dm.datasets["test"]) == 40


def test_random_crop_flip_moves_pixels_per_sample_and_keeps_shape():
    torch.manual_seed(0)
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).reshape(2, 3, 32, 32).repeat(64, 1, 1, 1)
    out = random_crop_flip(x, padding=4)
    assert out.shape == x.shape
    changed = (out != x).flatten(1).any(1)
    assert 0 < changed.sum() < len(x)  # some samples moved, not all the same way
    no_pad_flip_only = random_crop_flip(x[:1].expand(200, -1, -1, -1), padding=0)
    flipped = no_pad_flip_only.eq(x[:1].flip(-1)).flatten(1).all(1)
    kept = no_pad_flip_only.eq(x[:1]).flatten(1).all(1)
    assert (flipped | kept).all() and 50 < flipped.sum() < 150


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"batch_size": 0}, "data.batch_size=0"),
        ({"batch_size": -4}, "data.batch_size=-4"),
        ({"val_fraction": 1.5}, "data.val_fraction=1.5"),
        ({"train_fraction": 0.0}, "data.train_fraction=0.0"),
        ({"shape": [1, 9, 9]}, "data.shape=[1, 9, 9]"),
    ],
)
def test_bad_data_options_name_the_value(kwargs, expected):
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        DigitsDataModule(**kwargs).setup("fit")
