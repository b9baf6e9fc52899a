"""Read a torchvision dataset through its own loader, with errors that say which files are missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlgen.errors import DataError


def open_torchvision_dataset(dataset_cls: type, root: Path, train: bool, download: bool, expected: list[str]) -> Any:
    """Instantiate `dataset_cls(root, train=..., download=...)`, turning "not found" into a `DataError`.

    `expected` lists the files torchvision looks for, relative to `root`, so the message can
    name them; torchvision's own message names neither the folder nor the files.
    """
    name = dataset_cls.__name__
    try:
        return dataset_cls(str(root), train=train, download=download)
    except (AssertionError, ValueError, RuntimeError) as err:
        if not download and all((root / f).is_file() for f in expected):  # present but unreadable
            raise DataError(
                f"{name} files under data.root={root.resolve()} are there but unreadable ({type(err).__name__}: "
                f"{err or 'bad header'}): truncated or not IDX files. Fix: delete {', '.join(expected)} there and "
                f"set data.download=true, or copy them again from the source."
            ) from None
        if not isinstance(err, RuntimeError):
            raise
        if download:
            raise DataError(
                f"{name} could not be downloaded into {root.resolve()} ({err}). Fix: copy the files "
                f"{', '.join(expected)} under that folder by hand, or run once where the internet is reachable."
            ) from None
        raise DataError(
            f"{name} was not found under data.root={root.resolve()}: expected the files "
            f"{', '.join(expected)} there. Fix: set data.download=true to fetch it, or set data.root "
            f"to the folder that already holds them."
        ) from None
    except OSError as err:  # URLError and friends: no network while downloading
        raise DataError(
            f"{name} could not be downloaded into {root.resolve()} ({err}). Fix: copy the files "
            f"{', '.join(expected)} under that folder by hand, or run once where the internet is reachable."
        ) from None
