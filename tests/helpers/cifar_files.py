"""Write a tiny CIFAR-10 folder in the real pickle format, readable by torchvision's loader."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
from torchvision.datasets import CIFAR10


def write_cifar10(root: Path, n_per_batch: int = 20, n_test: int = 40, seed: int = 0) -> list[tuple[str, str]]:
    """Create `root/cifar-10-batches-py/` (5 train batches, test batch, meta); returns `(file, md5)` pairs."""
    rng = np.random.default_rng(seed)
    folder = root / CIFAR10.base_folder
    folder.mkdir(parents=True, exist_ok=True)
    md5s = []
    names = [name for name, _ in CIFAR10.train_list] + [name for name, _ in CIFAR10.test_list]
    for name in names:
        n = n_test if name == "test_batch" else n_per_batch
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": rng.integers(0, 10, n).tolist()}
        path = folder / name
        path.write_bytes(pickle.dumps(batch))
        md5s.append((name, hashlib.md5(path.read_bytes()).hexdigest()))
    meta = {"label_names": [f"class{i}" for i in range(10)]}
    (folder / CIFAR10.meta["filename"]).write_bytes(pickle.dumps(meta))
    return md5s


@pytest.fixture
def cifar_root(tmp_path, monkeypatch):
    """A fake CIFAR-10 folder; torchvision's md5 lists are patched to the fake files' checksums so
    its real integrity check passes."""
    root = tmp_path / "cifar"
    md5 = dict(write_cifar10(root))
    monkeypatch.setattr(CIFAR10, "train_list", [[n, md5[n]] for n, _ in CIFAR10.train_list])
    monkeypatch.setattr(CIFAR10, "test_list", [[n, md5[n]] for n, _ in CIFAR10.test_list])
    meta = dict(CIFAR10.meta)
    meta["md5"] = hashlib.md5((root / CIFAR10.base_folder / meta["filename"]).read_bytes()).hexdigest()
    monkeypatch.setattr(CIFAR10, "meta", meta)
    return root
