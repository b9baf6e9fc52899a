"""Real filesystems for fault injection: a small tmpfs fills up for real, and is another filesystem than /tmp."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of `size` (mount's syntax, e.g. 9m) mounted at `path`, unmounted afterwards whatever happens.
    `read_only`: a real read-only filesystem (root ignores file modes, not a read-only mount)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the fault suite as root)")
    path.mkdir(parents=True, exist_ok=True)
    options = f"ro,size={size}" if read_only else f"size={size}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False)
