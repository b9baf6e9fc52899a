"""What a run prints: its run dir at the start; at the end a short results table, what to do when it lacks
what a user came for (a generative model's sample quality), and copyable paths of everything it wrote.

Paths are printed unwrapped: rich wraps at 80 columns when output goes to a file or a pipe (Slurm logs),
which splits a checkpoint path a user wants to copy. Lightning's promotional tips are dropped (noise to an
mlgen user); its real messages stay.
"""

from __future__ import annotations

import logging
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mlgen.checkpoints.latest import last_checkpoint_in

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run reports back: metrics, the sweep objective, and where its files are."""

    metrics: dict[str, float]
    output_dir: Path
    objective_name: str | None = None
    objective: float | None = None
    best_checkpoint: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    tested_checkpoint: str | None = None
    notes: list[str] = field(default_factory=list)


def console() -> Console:
    """A rich console that never wraps long lines (paths stay whole in terminals, files and pipes)."""
    return Console(soft_wrap=True, highlight=False)


def print_paths(out: Console, **paths: str | Path | None) -> None:
    """`name: path` lines, one per path that exists in the result."""
    for name, path in paths.items():
        if path:
            out.print(f"{name.replace('_', ' ')}: {path}", markup=False)


def run_outputs(output_dir: str | Path) -> dict[str, Path]:
    """What a run left in its run dir, named as a user looks for it: checkpoints, grids, metrics per logger,
    its log and its config (only those that exist)."""
    out = Path(output_dir).resolve()
    wandb_run = out / "wandb" / "latest-run"
    paths = {
        "last checkpoint": last_checkpoint_in(out),
        "images": out / "images",
        "metrics CSV": out / "csv" / "metrics.csv",
        "TensorBoard": out / "tensorboard",
        "W&B run": wandb_run.resolve() if wandb_run.exists() else None,
        "log": next(iter(sorted(out.glob("*.log"))), None),
        "config": out / ".hydra" / "config.yaml",
    }
    return {name: path for name, path in paths.items() if path is not None and path.exists()}


def sample_quality_notes(model: Any, metrics: dict[str, float], datamodule: Any = None,
                         checkpoint: str | Path | None = None) -> list[str]:
    """The run's notes for the end-of-run table: for a generative model that ran without a feature
    extractor, how to get FID/KID (and label agreement), or for one trained on a table (its `datamodule`
    decodes rows) the `mlgen-synth` command that scores `checkpoint`; none otherwise."""
    if not callable(getattr(model, "sample", None)) or any("fid" in name for name in metrics):
        return []
    from hydra.core.hydra_config import HydraConfig

    data = HydraConfig.get().runtime.choices.get("data") if HydraConfig.initialized() else None
    if callable(getattr(datamodule, "decode", None)):  # rows of a table: mlgen-synth scores them as tables are judged
        intro = "To score the generated rows (utility on real test rows, fidelity, privacy):"
        generator = f"generator_ckpt={shlex.quote(str(checkpoint or '<this run dir>/checkpoints/last.ckpt'))}"
        data_options = data_arguments(data)
        if not data_options:
            return [f"{intro} run mlgen-synth with the data options this generator was trained with and {generator}"]
        return [f"{intro} mlgen-synth {' '.join(data_options)} {generator}"]
    measured = "FID/KID and label agreement" if getattr(model, "conditional", False) else "FID/KID"
    return [f"No sample-quality metrics: {measured} need a classifier trained on the same data, none was set. "
            f"Train one (mlgen-train model=classifier data={data or '<the same data>'}), then train this model with "
            "model.metrics.feature_ckpt=<that run dir>/checkpoints/last.ckpt to get val/ and test/ fid_clf, kid_clf"
            f"{' and label_agreement' if getattr(model, 'conditional', False) else ''}."]


def data_arguments(choice: str | None) -> list[str]:
    """This run's data `choice` and its `data.*` command-line overrides, quoted for a shell: the table that
    `mlgen-synth` must read to score this run's generator (it checks the checkpoint's transform against it).
    None without a data choice (mlgen-eval: the checkpoint's own run had it)."""
    from hydra.core.hydra_config import HydraConfig

    if not choice:
        return []
    options = [o for o in HydraConfig.get().overrides.task if re.match(r"[+~]*data\.", o)]
    return [f"data={choice}", *(shlex.quote(o) for o in options)]


def shown_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """Validation and test metrics; a run with none (a GAN without sample-quality metrics, `test=false`
    without validation) shows its last epoch's training metrics (losses) instead."""
    evaluated = {name: value for name, value in metrics.items() if name.startswith(("val/", "test/"))}
    if evaluated:
        return evaluated
    trained = {name.removesuffix("_epoch"): value for name, value in metrics.items()
               if name.startswith("train/") and not name.endswith("_step")}
    return {f"{name} (last epoch)": value for name, value in trained.items()}


def announce_run_dir(output_dir: str | Path) -> None:
    """The first thing a run says (rank 0, through logging, so also into train.log): where its files go."""
    from pytorch_lightning.utilities import rank_zero_only

    if rank_zero_only.rank == 0:
        log.info("run dir: %s", output_dir)


def print_result(result: RunResult, title: str) -> None:
    from pytorch_lightning.utilities import rank_zero_only

    if rank_zero_only.rank != 0:
        return
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in shown_metrics(result.metrics).items():
        table.add_row(name, f"{value:.4f}")
    if result.objective_name is not None and result.objective is not None:
        table.add_row(f"objective ({result.objective_name}, best)", f"{result.objective:.4f}", style="bold")
    out = console()
    if table.row_count:
        out.print(table)
    else:
        out.print(f"{title}: no metrics were logged.", markup=False)
    for note in result.notes:
        out.print(note, markup=False)
    print_paths(out, run_dir=result.output_dir, best_checkpoint=result.best_checkpoint,
                tested_checkpoint=result.tested_checkpoint, **run_outputs(result.output_dir))


# Lines of Lightning's that say nothing to an mlgen user: promotional tips, a note about the model summary
# callback mlgen configures on purpose, a hint to use srun printed on any machine that has Slurm installed, and
# the count of modules in eval mode at the start of training (mlgen's EMA copies and FID feature extractors
# stay in eval mode on purpose; the count of a GAN is 26).
_NOISE_LOG_PREFIXES = ("💡 Tip", "Trainer already configured with model summary callbacks")
_NOISE_WARNINGS = (r"The `srun` command is available on your system but is not used",
                   r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                   r"Found \d+ module\(s\) in eval mode at the start of training")


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_NOISE_LOG_PREFIXES)


def quiet_dependency_noise() -> None:
    """Drop the lines above from Lightning's rank-zero logger and warnings (idempotent)."""
    import warnings

    lightning_log = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if not any(isinstance(f, _DropNoise) for f in lightning_log.filters):
        lightning_log.addFilter(_DropNoise())
    for message in _NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
