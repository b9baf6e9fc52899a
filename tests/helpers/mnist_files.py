"""Write MNIST-format IDX folders for tests (torchvision reads them through its real loader)."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

# The real MNIST test set lives next to the repository (../shared), never inside it.
SHARED_MNIST = Path(os.environ.get("MLGEN_MNIST_T10K", Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist-t10k"))


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX: big-endian magic 0,0,0x08(ubyte),ndim; each dimension as >u4; then the bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def read_idx_gz(path: Path) -> np.ndarray:
    data = gzip.decompress(path.read_bytes())
    ndim = data[3]
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def write_mnist_folder(root: Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                       folder: str = "MNIST") -> Path:
    """Lay out `root/<folder>/raw/` as torchvision's MNIST-family loaders expect."""
    raw = root / folder / "raw"
    write_idx(raw / "train-images-idx3-ubyte", train[0])
    write_idx(raw / "train-labels-idx1-ubyte", train[1])
    write_idx(raw / "t10k-images-idx3-ubyte", test[0])
    write_idx(raw / "t10k-labels-idx1-ubyte", test[1])
    return root


def real_mnist_split(root: Path, n_train: int = 8000) -> Path:
    """The real MNIST test set from ../shared: its first `n_train` images as train, the rest as test."""
    images = read_idx_gz(SHARED_MNIST / "t10k-images-idx3-ubyte.gz")
    labels = read_idx_gz(SHARED_MNIST / "t10k-labels-idx1-ubyte.gz")
    return write_mnist_folder(root, (images[:n_train], labels[:n_train]), (images[n_train:], labels[n_train:]))


def random_mnist(root: Path, n_train: int = 200, n_test: int = 100, folder: str = "MNIST", seed: int = 0) -> Path:
    """A tiny random MNIST-format dataset (for shape and plumbing tests)."""
    rng = np.random.default_rng(seed)
    make = lambda n: (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8))  # noqa: E731
    return write_mnist_folder(root, make(n_train), make(n_test), folder)
