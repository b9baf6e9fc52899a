"""mlgen's configs composed in-process for the benchmarks, as `mlgen-train` composes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Quiet CPU runs with CSV logs, the settings every benchmark run starts from.
QUICK = ["trainer=cpu", "logger=csv", "trainer.enable_progress_bar=false", "callbacks.model_summary=null"]


def compose(overrides: list[str], output_dir: Path, config_name: str = "train") -> Any:
    """The composed config (`train`, or `synth`, ...) writing to `output_dir` (Hydra is not run, so the run
    dir is set here)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    from mlgen import resolvers  # noqa: F401  (registers ${mlgen_run_id:} and friends)

    with initialize_config_module("mlgen.conf", version_base="1.3"):
        return hydra_compose(config_name, overrides=[*overrides, f"paths.output_dir={output_dir}"])
