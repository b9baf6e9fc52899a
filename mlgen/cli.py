"""The `mlgen-*` commands: thin Hydra mains that compose a config, run a task, print where it went.

Only Hydra (and mlgen's config resolvers) are imported at module level, so `--help`, `--cfg job`
and tab completion don't pay for torch or Lightning; each task is imported when it runs.
`python -m mlgen.cli train ...` runs a command without its console script (benchmarks, DDP children).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from hydra_plugins import mlgen_sweeper
from omegaconf import DictConfig

from mlgen import resolvers  # noqa: F401  (registers ${mlgen_run_id:} etc. before Hydra composes)
from mlgen.distributed.preemption import catch_preemption_signal_early
from mlgen.errors import MLGenError, exit_on_user_error

mlgen_sweeper.register()  # hydra/sweeper=mlgen_optuna, also in editable installs (see its module)

catch_preemption_signal_early()  # a Slurm warning signal during start-up must not kill the job

CONFIGS = "pkg://mlgen.conf"


def _no_unused_run_dir(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Whatever the outcome, drop the run dir if the task left nothing in it but Hydra's set-up
    (a run stopped by bad input; mlgen-sample writing to out=): 46 of 51 failed runs once left one."""

    @functools.wraps(task)
    def wrapper(cfg: DictConfig) -> Any:
        try:
            return task(cfg)
        finally:
            from mlgen.distributed.run_dir import remove_if_unused

            remove_if_unused(cfg.paths.output_dir)

    return wrapper


def _resume_hint(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """After a crash (or a Ctrl-C before training or a second one), say which run dir and last.ckpt to
    resume from. (A first SIGTERM / Ctrl-C during fit saves and says so itself: distributed/interrupt.py.)"""

    @functools.wraps(task)
    def wrapper(cfg: DictConfig) -> Any:
        try:
            return task(cfg)
        except MLGenError:
            raise  # bad input: its message says what to fix
        except (Exception, KeyboardInterrupt):
            from mlgen.checkpoints.latest import last_checkpoint_in

            last = last_checkpoint_in(cfg.paths.output_dir)
            if last.is_file():
                print(f"mlgen: the run in {last.parents[1]} stopped; resume from its last checkpoint with:\n"
                      f"  mlgen-train ckpt_path={last}", file=sys.stderr, flush=True)
            raise

    return wrapper


@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="train")
@_no_unused_run_dir
@exit_on_user_error
@_resume_hint
def train(cfg: DictConfig) -> float | None:
    """`mlgen-train`: train, test the best checkpoint, return the objective to Hydra's sweepers."""
    from mlgen.tasks.report import print_result
    from mlgen.tasks.train import train as run_training

    result = run_training(cfg)
    print_result(result, title="mlgen-train")
    return result.objective


@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="eval")
@_no_unused_run_dir
@exit_on_user_error
def evaluate(cfg: DictConfig) -> None:
    """`mlgen-eval ckpt_path=...`: test a checkpoint; model and data come from the config inside it."""
    from mlgen.tasks.evaluate import evaluate as run_evaluation
    from mlgen.tasks.report import print_result

    print_result(run_evaluation(cfg), title="mlgen-eval")


@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="sample")
@_no_unused_run_dir
@exit_on_user_error
def sample(cfg: DictConfig) -> None:
    """`mlgen-sample ckpt_path=... n=64 [labels=...] out=...`: a PNG grid (and optionally a .pt file)."""
    from mlgen.tasks.sample import sample as draw_samples

    for path in draw_samples(cfg):
        print(f"wrote {path.resolve()}")


@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="synth")
@_no_unused_run_dir
@exit_on_user_error
def synth(cfg: DictConfig) -> float:
    """`mlgen-synth`: train on a generator's samples, test on real data (see `mlgen.tasks.synth`)."""
    from mlgen.tasks.synth import print_report
    from mlgen.tasks.synth import synth as run_synth

    report = run_synth(cfg)
    print_report(report, Path(cfg.paths.output_dir))
    return report.cas_ratio


@exit_on_user_error
def plot(argv: list[str] | None = None) -> None:
    """`mlgen-plot DIR`: PNGs of a run logged with the CSV logger or of a sweep (see `mlgen.tasks.plot`)."""
    import argparse

    from mlgen.tasks.plot import __doc__ as plot_doc
    from mlgen.tasks.plot import plot_dir

    parser = argparse.ArgumentParser(prog="mlgen-plot", description=(plot_doc or "").split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="run dir of a run trained with logger=csv, or a sweep dir")
    parser.add_argument("--out", type=Path, default=None, help="folder for the PNGs (default: RUN_DIR/plots)")
    parser.add_argument("--x", default="step", help="x axis: step (default) or epoch")
    args = parser.parse_args(argv)
    for path in plot_dir(args.run_dir, args.out, args.x):
        print(path.resolve())  # whole paths, as every other command prints them


COMMANDS = {"train": train, "eval": evaluate, "sample": sample, "synth": synth, "plot": plot}

if __name__ == "__main__":
    command = sys.argv.pop(1) if len(sys.argv) > 1 and sys.argv[1] in COMMANDS else "train"
    COMMANDS[command]()
