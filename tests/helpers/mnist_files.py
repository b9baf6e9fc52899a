"""MNIST-format folders for tests, read by torchvision's real loaders (the IDX code is mlgen.data.idx)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlgen.data.idx import mnist_from_t10k, write_mnist_folder

# The real MNIST test set, shipped in the repo (see its README.md for source and licence).
MNIST_T10K = Path(__file__).resolve().parents[1] / "data" / "mnist-t10k"


def real_mnist_split(root: Path) -> Path:
    """The real MNIST test set in `root`, split 8,000 train / 2,000 test."""
    return mnist_from_t10k(MNIST_T10K, root)


def random_mnist(root: Path, n_train: int = 200, n_test: int = 100, folder: str = "MNIST", seed: int = 0) -> Path:
    """A tiny random MNIST-format dataset (for shape and plumbing tests)."""
    rng = np.random.default_rng(seed)
    make = lambda n: (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8))  # noqa: E731
    return write_mnist_folder(root, make(n_train), make(n_test), folder)
