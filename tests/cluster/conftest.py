"""Session-wide local Slurm cluster for tests marked `slurm`."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .slurm_cluster import LocalSlurmCluster


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too so this directory works without the project's pytest config.
    config.addinivalue_line("markers", "slurm: needs the local Slurm cluster harness")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSlurmCluster]:
    """One real slurmctld+slurmd for the whole session (bring-up ~1 s, install ~5 s once)."""
    reason = LocalSlurmCluster.ensure_slurm_installed()  # raises if an install as root fails
    if reason:
        if os.environ.get("CI") and os.geteuid() == 0:
            pytest.fail(f"Slurm unavailable under CI as root: {reason}")
        pytest.skip(reason)
    with LocalSlurmCluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster
