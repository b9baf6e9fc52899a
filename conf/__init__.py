"""Hydra configs of mlgen, shipped inside the package as `mlgen.conf` (see pyproject.toml)."""
