"""Test-wide settings: W&B never touches $HOME or the network, runs stay in tmp dirs."""

from __future__ import annotations

import os

import pytest

from tests.helpers.cifar_files import cifar_root  # noqa: F401  (fixture)
from tests.helpers.mnist_files import random_mnist, real_mnist_split


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    for name in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / name.lower()))
    monkeypatch.setenv("WANDB_MODE", os.environ.get("MLGEN_TEST_WANDB_MODE", "offline"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    for name in list(os.environ):
        if name.startswith("SLURM_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLGEN_LOG_DIR", str(tmp_path / "logs"))


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory):
    """The real MNIST test set split 8,000 train / 2,000 test, in torchvision's on-disk layout."""
    return real_mnist_split(tmp_path_factory.mktemp("mnist"))


@pytest.fixture
def mnist_like_root(tmp_path):
    """Tiny random MNIST, Fashion-MNIST and KMNIST folders in torchvision's layout."""
    root = tmp_path / "mnist-like"
    for folder in ("MNIST", "FashionMNIST", "KMNIST"):
        random_mnist(root, folder=folder)
    return root
