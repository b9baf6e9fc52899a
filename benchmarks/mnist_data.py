"""The real MNIST test set for the benchmarks: `--data FOLDER`, by default the copy in this repo."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlgen.data.idx import mnist_from_t10k, read_t10k
from mlgen.errors import DataError

REPO_COPY = Path(__file__).resolve().parents[1] / "tests" / "data" / "mnist-t10k"


def add_data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=REPO_COPY,
                        help="folder holding MNIST's t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz "
                             "(default: the copy shipped in the repo, %(default)s)")


def check_data(parser: argparse.ArgumentParser, folder: Path) -> None:
    """Stop at once, with argparse's usage line and one paragraph saying what is missing and the fix,
    rather than after minutes of work or with a bare FileNotFoundError."""
    try:
        read_t10k(folder)
    except DataError as err:
        parser.error(f"--data {folder}: {err}")


def mnist_root(source: Path, root: Path, train: slice = slice(0, 8000), test: slice = slice(8000, None)) -> Path:
    """`root` laid out as torchvision's MNIST from the files in `source` (once; reused when present)."""
    if not (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").is_file():
        mnist_from_t10k(source, root, train, test)
    return root
