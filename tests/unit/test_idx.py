"""mlgen.data.idx: the real MNIST test set shipped in tests/data, IDX round trips, torchvision's layout."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from torchvision import datasets

from mlgen.data.idx import mnist_from_t10k, read_idx, read_t10k, write_idx, write_mnist_folder
from mlgen.errors import DataError
from tests.helpers.mnist_files import MNIST_T10K

# Digits 0..9 in MNIST's 10,000 test images (a fact of the data set, not of mlgen).
T10K_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_the_shipped_files_are_the_real_mnist_test_set():
    images, labels = read_t10k(MNIST_T10K)
    assert images.shape == (10_000, 28, 28) and labels.shape == (10_000,)
    assert np.bincount(labels).tolist() == T10K_LABEL_COUNTS
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert images.dtype == np.uint8 and images.max() == 255 and 0.12 < images.mean() / 255 < 0.14


def test_the_8000_2000_split_reads_through_torchvisions_mnist(tmp_path):
    images, labels = read_t10k(MNIST_T10K)
    root = mnist_from_t10k(MNIST_T10K, tmp_path)
    train, test = datasets.MNIST(root, train=True), datasets.MNIST(root, train=False)
    assert len(train) == 8000 and len(test) == 2000
    assert np.array_equal(train.data.numpy(), images[:8000]) and np.array_equal(test.targets.numpy(), labels[8000:])


def test_idx_bytes_and_round_trip(tmp_path):
    labels = np.array([3, 1, 4], dtype=np.uint8)
    write_idx(tmp_path / "labels", labels)
    assert (tmp_path / "labels").read_bytes() == bytes.fromhex("00000801 00000003 030104")
    cube = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "cube", cube)
    (tmp_path / "cube.gz").write_bytes(gzip.compress((tmp_path / "cube").read_bytes()))
    assert np.array_equal(read_idx(tmp_path / "cube"), cube) and np.array_equal(read_idx(tmp_path / "cube.gz"), cube)


def test_other_layouts_torchvision_reads(tmp_path):
    """The same writer serves Fashion-MNIST and KMNIST folders (same file names, other folder)."""
    rng = np.random.default_rng(0)
    split = (rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), rng.integers(0, 10, 5, dtype=np.uint8))
    write_mnist_folder(tmp_path, split, split, folder="FashionMNIST")
    assert datasets.FashionMNIST(tmp_path, train=False).targets.tolist() == split[1].tolist()


def test_bad_files_and_a_missing_folder_give_one_paragraph_with_the_fix(tmp_path):
    (tmp_path / "not-idx").write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(DataError, match=r"not-idx is not an unsigned-byte IDX file .*50 4b 03 04.*Fix: use the MNIST files"):
        read_idx(tmp_path / "not-idx")
    write_idx(tmp_path / "short", np.zeros((4, 2), dtype=np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-3])
    with pytest.raises(DataError, match=r"short is truncated .*shape \(4, 2\), which needs 8 bytes, but 5 follow"):
        read_idx(tmp_path / "short")
    with pytest.raises(DataError) as err:
        mnist_from_t10k(tmp_path / "nowhere", tmp_path / "out")
    message = str(err.value)
    assert "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz missing" in message
    assert str(tmp_path / "nowhere") in message and "tests/data/mnist-t10k" in message and "\n" not in message
    assert not (tmp_path / "out").exists()  # nothing half-written
