"""Print a run's results as a short rich table (rank 0 only)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from mlgen.tasks.common import RunResult


def print_result(result: RunResult, title: str) -> None:
    from pytorch_lightning.utilities import rank_zero_only

    if rank_zero_only.rank != 0:
        return
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result.metrics.items():
        if name.startswith(("val/", "test/")):
            table.add_row(name, f"{value:.4f}")
    if result.objective_name is not None and result.objective is not None:
        table.add_row(f"objective ({result.objective_name}, best)", f"{result.objective:.4f}", style="bold")
    console = Console()
    console.print(table)
    console.print(f"run dir: {result.output_dir}", highlight=False)
    if result.best_checkpoint:
        console.print(f"checkpoint: {result.best_checkpoint}", highlight=False)
