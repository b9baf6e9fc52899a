"""IDX files (the MNIST family's format) and torchvision's on-disk layout for them.

torchvision's MNIST loaders read only `<root>/MNIST/raw/` holding all four files of a train and a test
split, and torchvision writes no IDX; so turning arrays, or the real MNIST test set alone (which is
what mlgen ships for offline tests and benchmarks), into that layout is written by hand here.
Format: big-endian magic 0, 0, 0x08 (unsigned bytes), ndim; each dimension as >u4; then the bytes.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from mlgen.errors import DataError

UBYTE = 0x08
T10K_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
MNIST_SOURCE = "https://ossci-datasets.s3.amazonaws.com/mnist/ (torchvision's mirror of yann.lecun.com/exdb/mnist)"
Split = tuple[np.ndarray, np.ndarray]


def read_idx(path: Path) -> np.ndarray:
    """The unsigned-byte array in an IDX file, gzipped (`.gz`) or not."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(data) < 4 or data[:3] != bytes((0, 0, UBYTE)):
        raise DataError(f"{path} is not an unsigned-byte IDX file (its first bytes are {data[:4].hex(' ')}, "
                        f"expected 00 00 08 and the number of dimensions). Fix: use the MNIST files from {MNIST_SOURCE}.")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    if len(data) != 4 + 4 * ndim + int(np.prod(shape)):
        raise DataError(f"{path} is truncated or padded: its header says shape {shape}, which needs "
                        f"{int(np.prod(shape))} bytes, but {len(data) - 4 - 4 * ndim} follow. Fix: fetch the file again.")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    """`array` (values 0..255) as an uncompressed unsigned-byte IDX file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes((0, 0, UBYTE, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_mnist_folder(root: Path, train: Split, test: Split, folder: str = "MNIST") -> Path:
    """Lay out `root/<folder>/raw/` as torchvision's MNIST, FashionMNIST and KMNIST loaders expect; returns
    `root`, the value of `data.root`."""
    raw = root / folder / "raw"
    for split, (images, labels) in (("train", train), ("t10k", test)):
        write_idx(raw / f"{split}-images-idx3-ubyte", images)
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels)
    return root


def read_t10k(folder: Path) -> Split:
    """Images [10000, 28, 28] and labels [10000] of the real MNIST test set, from MNIST's own gzipped files."""
    paths = [folder / name for name in T10K_FILES]
    missing = [path.name for path in paths if not path.is_file()]
    if missing:
        raise DataError(f"the real MNIST test set is not in {folder}: {' and '.join(missing)} missing. Fix: point "
                        f"at a folder holding {' and '.join(T10K_FILES)} (a clone of mlgen has them in "
                        f"tests/data/mnist-t10k; they are MNIST's own files, from {MNIST_SOURCE}).")
    images, labels = (read_idx(path) for path in paths)
    return images, labels


def mnist_from_t10k(source: Path, root: Path, train: slice = slice(0, 8000), test: slice = slice(8000, None)) -> Path:
    """The real MNIST test set in `source` laid out in `root` as torchvision's MNIST, its images `train` as
    the train split and `test` as the test split (by default 8,000 / 2,000, the split of mlgen's
    real-MNIST tests and quality benchmarks); returns `root`, the value of `data.root`."""
    images, labels = read_t10k(source)
    return write_mnist_folder(root, (images[train], labels[train]), (images[test], labels[test]))
