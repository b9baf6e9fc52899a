"""Test-wide settings: W&B never touches $HOME or the network, runs stay in tmp dirs; pytest-xdist workers
share the machine's cores instead of each using all of them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.helpers.cifar_files import cifar_root  # noqa: F401  (fixture)
from tests.helpers.mnist_files import random_mnist, real_mnist_split

_MAX_WORKERS = 4  # more workers than this gain little: many tests run 2-process DDP jobs of their own


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (the default in pyproject.toml): one worker per usable core, at most _MAX_WORKERS."""
    return max(1, min(_MAX_WORKERS, _usable_cores()))


if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    # Each worker (and every process a test starts) gets its share of the cores: torch's default of one
    # OpenMP thread per core in every worker oversubscribes the CPU, which slows OpenMP several-fold.
    _threads = max(1, _usable_cores() // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("OMP_NUM_THREADS", str(_threads))
    torch.set_num_threads(_threads)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Whole files go to one worker (`--dist loadfile`: module-scoped fixtures are built once), and all files
    of the local Slurm cluster (`test_slurm_*.py`: one cluster per machine, fixed ports, one munged) to one worker.
    By hand because xdist's `xdist_group` markers are not applied under pytest 9.2 (xdist 3.8 renames
    `item._nodeid`, which pytest 9.2 no longer reads)."""
    from xdist.scheduler import LoadFileScheduling

    class FileAndSlurmScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return "slurm-cluster" if Path(path).name.startswith("test_slurm_") else path

    return FileAndSlurmScheduling(config, log)


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
