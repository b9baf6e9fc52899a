"""Train on synthetic, test on real: the Classification Accuracy Score (CAS) of a generator and what its
samples add in a low-data setting, measured fairly. Every arm is an ordinary `train()` run.

Fair means three things. (1) Every arm runs the same number of optimizer steps (`budget.steps`), so a
larger mixed training set does not simply buy more updates; epochs per arm follow from it. (2) A control
arm mixes in the same samples with shuffled labels: whatever it gains over real data alone (more,
noisier inputs act as regularisation) is not the generator's doing, so the generator's gain is
mixed - control. (3) Each arm is repeated over `seeds` (the classifier's seed) and reported as mean and
standard deviation; gains are paired per seed. On tables (a datamodule with `decode`), the
synthetic-only arm's samples are also scored for utility, fidelity and privacy (`mlgen.tasks.synth_tabular`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from mlgen.checkpoints.allowlist import trusting_config_targets
from mlgen.checkpoints.latest import last_checkpoint_in
from mlgen.checkpoints.load import load_checkpoint
from mlgen.config.checks import check_int, require
from mlgen.config.instantiate import instantiate_datamodule
from mlgen.data.synthetic import checked_generator
from mlgen.tasks.train import train
from mlgen.tracking.loggers import finish_loggers, instantiate_loggers

SYNTHETIC_TARGET = "mlgen.data.synthetic.SyntheticDataModule"


@dataclass(frozen=True)
class Arm:
    """What one arm trains on: `mix_ratio` synthetic share, `train_fraction` of the real training
    split, and whether the samples' labels are shuffled (the control)."""

    mix_ratio: float
    train_fraction: float
    shuffle_labels: bool = False


@dataclass
class ArmResult:
    """One arm over all seeds: test accuracy on real data and optimizer steps read from each run."""

    train_examples: int
    epochs: int
    accs: list[float] = field(default_factory=list)
    steps: list[int | None] = field(default_factory=list)
    run_dirs: list[str] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.mean(self.accs))

    @property
    def std(self) -> float:
        return spread(self.accs)


def spread(values: list[float]) -> float:
    """Sample standard deviation over seeds (0 for a single seed)."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


@dataclass
class SynthReport:
    """Test accuracies on real data of every arm over every seed, and the scores derived from them."""

    steps: int
    seeds: list[int]
    low_data_fraction: float
    arms: dict[str, ArmResult]
    tabular: dict[str, Any] | None = None
    samples_png: str | None = None

    def _paired(self, a: str, b: str) -> list[float]:
        return [x - y for x, y in zip(self.arms[a].accs, self.arms[b].accs)]

    @property
    def steps_matched(self) -> bool:
        """Every run of every arm ran `steps` optimizer steps (as read from its last checkpoint)."""
        return all(s == self.steps for arm in self.arms.values() for s in arm.steps)

    def scores(self) -> dict[str, float]:
        real, cas = self.arms["real"], self.arms["synthetic"]
        low_gain, generator_gain = self._paired("low_data_mixed", "low_data_real"), self._paired("low_data_mixed", "low_data_control")
        return {
            "real_acc": real.mean, "real_acc_std": real.std, "cas": cas.mean, "cas_std": cas.std,
            "cas_ratio": cas.mean / real.mean,
            "low_data_real_acc": self.arms["low_data_real"].mean, "low_data_mixed_acc": self.arms["low_data_mixed"].mean,
            "low_data_control_acc": self.arms["low_data_control"].mean,
            "low_data_gain": float(np.mean(low_gain)), "low_data_gain_std": spread(low_gain),
            "generator_gain": float(np.mean(generator_gain)), "generator_gain_std": spread(generator_gain),
        }

    @property
    def cas_ratio(self) -> float:
        return self.scores()["cas_ratio"]

    def verdict(self) -> str:
        s = self.scores()
        gain, std, low, low_std = s["generator_gain"], s["generator_gain_std"], s["low_data_gain"], s["low_data_gain_std"]
        if gain - std <= 0:
            judged = "adds nothing beyond what the same samples with shuffled labels add"
        elif low - low_std > 0:
            judged = "helps: mixed beats both the control and real data alone"
        else:
            judged = "beats the control, but not clearly real data alone"
        return (f"with {self.low_data_fraction:.0%} of the real training data and {self.steps} optimizer steps per arm, "
                f"the generator's samples add {gain:+.4f} ± {std:.4f} over the shuffled-label control "
                f"({s['low_data_mixed_acc']:.4f} vs {s['low_data_control_acc']:.4f}) and {low:+.4f} ± {low_std:.4f} over "
                f"real data alone ({s['low_data_real_acc']:.4f}), over {len(self.seeds)} seed(s): the generator {judged}")

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), **self.scores(), "steps_matched": self.steps_matched, "verdict": self.verdict()}


def arm_config(cfg: DictConfig, name: str, arm: Arm, seed: int | None = None) -> DictConfig:
    """The run config of one arm: the real data wrapped in the synthetic datamodule."""
    run = cfg.copy()
    out = Path(cfg.paths.output_dir)
    real = OmegaConf.to_container(cfg.data, resolve=True)
    if real.get("_target_") == SYNTHETIC_TARGET:  # the user picked data=synthetic: use its real part
        real = real["real"]
    real["train_fraction"] = 1.0  # the low-data cut is the synthetic datamodule's real_fraction
    with open_dict(run):
        run.data = {
            "_target_": SYNTHETIC_TARGET, "_recursive_": False, "generator_ckpt": cfg.generator_ckpt, "real": real,
            "shape": real["shape"], "num_classes": real["num_classes"], "mix_ratio": arm.mix_ratio,
            **OmegaConf.to_container(cfg.synthetic, resolve=True), "cache_dir": str(out / "synthetic"),
            "shuffle_labels": arm.shuffle_labels, "real_fraction": arm.train_fraction,
        }
        run.paths.output_dir = str(out / name if seed is None else out / name / f"seed_{seed}")
        run.seed = seed if seed is not None else cfg.get("seed")
        if run.get("logger") and run.logger.get("wandb"):
            run.logger.wandb.name = name if seed is None else f"{name}-seed{seed}"
    return run


def arms(cfg: DictConfig) -> dict[str, Arm]:
    low = cfg.low_data
    return {
        "real": Arm(0.0, 1.0),
        "synthetic": Arm(1.0, 1.0),
        "low_data_real": Arm(0.0, low.train_fraction),
        "low_data_mixed": Arm(low.mix_ratio, low.train_fraction),
        "low_data_control": Arm(low.mix_ratio, low.train_fraction, shuffle_labels=True),
    }


def training_set(run: DictConfig) -> tuple[Any, int, int]:
    """An arm's datamodule set up for fitting (samples drawn and cached), its number of training
    examples and its optimizer steps per epoch."""
    datamodule = instantiate_datamodule(run.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    # the loader's own length: one optimizer step per batch, over every pass of `data.passes_per_epoch`
    return datamodule, len(datamodule.real.datasets["train"]), len(datamodule.train_dataloader())


def with_real_class_proportions(cfg: DictConfig, real_arm: Any) -> DictConfig:
    """`synthetic.class_proportions: null` means the real training split's class frequencies, so the
    samples' label column follows the real one (a table's fidelity scores it) and no arm gets another prior."""
    if cfg.synthetic.get("class_proportions") is not None:
        return cfg
    labels = real_arm.real.datasets["train"].tensors[1]
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.synthetic.class_proportions = torch.bincount(labels, minlength=real_arm.num_classes).tolist()
    return cfg


def step_budget(cfg: DictConfig, real_steps_per_epoch: int) -> int:
    """`budget.steps`, or by default what `trainer.max_epochs` epochs of the full real split take."""
    steps = cfg.budget.get("steps")
    if steps is None:
        epochs = cfg.trainer.get("max_epochs")
        require(isinstance(epochs, int) and epochs > 0, "trainer.max_epochs", epochs,
                "mlgen-synth derives the step budget of every arm from it unless budget.steps is set",
                "set trainer.max_epochs=20 or budget.steps=500")
        return epochs * real_steps_per_epoch
    check_int("budget.steps", steps, low=1, example=500)
    return steps


def steps_run(run_dir: str) -> int | None:
    """Optimizer steps of a finished run, from its last checkpoint (None when it wrote none)."""
    path = last_checkpoint_in(run_dir)
    return int(load_checkpoint(path)["global_step"]) if path.is_file() else None


@trusting_config_targets
def synth(cfg: DictConfig) -> SynthReport:
    """Run every arm over every seed with one step budget; write `synth_report.json` into the run dir."""
    seeds = list(cfg.seeds)
    require(len(seeds) > 0 and all(isinstance(s, int) for s in seeds), "seeds", seeds,
            "it must be a non-empty list of integers", "e.g. seeds=[0,1,2]")
    plan = arms(cfg)
    prepared = {"real": training_set(arm_config(cfg, "real", plan["real"]))}
    real = prepared["real"][0].real
    # a bad, untrusted or unconditional generator and bad sampling options are refused before any arm draws or trains
    checked_generator(cfg.generator_ckpt, real.shape, real.num_classes, cfg.synthetic.get("sampling"),
                      "generator_ckpt", "synthetic.sampling.")
    cfg = with_real_class_proportions(cfg, prepared["real"][0])
    prepared.update({name: training_set(arm_config(cfg, name, arm)) for name, arm in plan.items() if name != "real"})
    steps = step_budget(cfg, prepared["real"][2])
    longest = max(steps_per_epoch for _, _, steps_per_epoch in prepared.values())
    require(steps >= longest, "budget.steps", steps,
            f"the longest arm's epoch takes {longest} optimizer steps and arms validate (and keep their best "
            "checkpoint for the test) at epoch ends, so every arm must run at least one epoch",
            f"set budget.steps={longest} or more, or budget.steps=null to derive it from trainer.max_epochs")
    results = {}
    for name, arm in plan.items():
        _, n, steps_per_epoch = prepared[name]
        epochs = math.ceil(steps / steps_per_epoch)
        result = results[name] = ArmResult(train_examples=n, epochs=epochs)
        for seed in seeds:
            run = arm_config(cfg, name, arm, seed)
            with open_dict(run):
                run.trainer.max_steps, run.trainer.max_epochs = steps, epochs
            outcome = train(run)
            result.accs.append(outcome.metrics["test/acc"])
            result.run_dirs.append(str(outcome.output_dir))
            result.steps.append(steps_run(str(outcome.output_dir)))
    report = SynthReport(steps=steps, seeds=seeds, low_data_fraction=float(cfg.low_data.train_fraction), arms=results)
    out = Path(cfg.paths.output_dir)
    if hasattr(prepared["real"][0].real, "decode"):
        from mlgen.tasks.synth_tabular import evaluate_table

        report.tabular = evaluate_table(cfg, prepared["real"][0], prepared["synthetic"][0], report.scores(), out)
    elif len(prepared["synthetic"][0].shape) == 3:  # images
        report.samples_png = str(write_sample_grid(prepared["synthetic"][0], out / "synthetic_samples.png"))
    (out / "synth_report.json").write_text(json.dumps(report.as_json(), indent=2))
    log_summary(cfg, report)
    return report


def write_sample_grid(synthetic: Any, path: Path, per_class: int = 10) -> Path:
    """A labelled grid of the synthetic-only arm's training images: the first `per_class` of each class, one
    class per row (what the CAS classifier learnt from)."""
    from mlgen.tracking.labelled_grid import sample_grid

    x, y = synthetic.real.datasets["synthetic"].tensors
    keep = torch.cat([torch.nonzero(y == c).flatten()[:per_class] for c in range(synthetic.num_classes)])
    sample_grid(x[keep], per_class, y[keep]).save(path)
    return path


def arm_names(report: SynthReport) -> dict[str, str]:
    """What each arm's classifier was trained on, in words (the report's rows, in the terminal and in W&B)."""
    fraction = f"{report.low_data_fraction:.0%} of real"
    return {"real": "real data", "synthetic": "synthetic data only (CAS)", "low_data_real": fraction,
            "low_data_mixed": f"{fraction} + synthetic", "low_data_control": f"{fraction} + synthetic, labels shuffled (control)"}


def wandb_arm_logs(report: SynthReport) -> dict[str, Any]:
    """The report as W&B media: a table with one row per arm and a bar plot of its test accuracy (mean over
    seeds; the spread is in the table's std column, which a W&B bar plot can't draw)."""
    import wandb

    columns = ["arm", "trained on", "examples", "epochs", "test_acc", "test_acc_std", "seeds"]
    rows = [[name, arm_names(report)[name], arm.train_examples, arm.epochs, arm.mean, arm.std, len(arm.accs)]
            for name, arm in report.arms.items()]
    table = wandb.Table(columns=columns, data=rows)
    title = f"test accuracy on real data ({report.steps} optimizer steps per arm, {len(report.seeds)} seed(s))"
    logs = {"synth/arms": table, "synth/test_acc": wandb.plot.bar(table, "arm", "test_acc", title=title)}
    if report.samples_png:
        logs["synth/samples"] = wandb.Image(report.samples_png, caption="synthetic training images, one class per row")
    return logs


def log_summary(cfg: DictConfig, report: SynthReport) -> None:
    """The scores as summary entries of one run of each logger that keeps summaries (W&B), the arms as a
    W&B table and bar plot, and the per-column fidelity of a table as a W&B table."""
    loggers = instantiate_loggers(cfg.get("logger"))
    for logger in loggers:
        experiment = getattr(logger, "experiment", None)
        summary = getattr(experiment, "summary", None)
        if summary is None:
            continue
        entries = {f"synth/{k}": v for k, v in report.scores().items()}
        entries["synth/steps"] = report.steps
        experiment.log(wandb_arm_logs(report))
        if report.tabular:
            from mlgen.tasks.synth_tabular import summary_entries, wandb_column_table

            entries.update(summary_entries(report.tabular))
            experiment.log({"synth/columns": wandb_column_table(report.tabular)})
        summary.update(entries)
    finish_loggers(loggers)


def print_report(report: SynthReport, out_dir: Path) -> None:
    from rich.table import Table

    from mlgen.tasks.report import console, print_paths

    table = Table(title=f"mlgen-synth: test accuracy on real data ({report.steps} optimizer steps per arm, "
                        f"{len(report.seeds)} seed(s))", header_style="bold")
    for column in ("classifier trained on", "examples", "epochs", "test acc (mean ± std)"):
        table.add_column(column, justify="left" if column.startswith("classifier") else "right")
    labels = arm_names(report)
    for name, arm in report.arms.items():
        table.add_row(labels[name], str(arm.train_examples), str(arm.epochs), f"{arm.mean:.4f} ± {arm.std:.4f}")
    s = report.scores()
    table.add_row("CAS / real", "", "", f"{s['cas_ratio']:.4f}")
    table.add_row("gain: mixed - real (low data)", "", "", f"{s['low_data_gain']:+.4f} ± {s['low_data_gain_std']:.4f}")
    table.add_row("gain of the generator: mixed - control", "", "", f"{s['generator_gain']:+.4f} ± {s['generator_gain_std']:.4f}")
    out = console()
    out.print(table)
    if not report.steps_matched:
        out.print(f"warning: not every run ran {report.steps} steps: {[a.steps for a in report.arms.values()]}", markup=False)
    out.print(report.verdict(), markup=False)
    if report.tabular:
        from mlgen.tasks.synth_tabular import print_tabular

        print_tabular(out, report.tabular)
    samples = out_dir / "synthetic"
    print_paths(out, report=out_dir / "synth_report.json", sample_grid=report.samples_png,
                synthetic_samples=samples if samples.is_dir() else None,
                **{f"{arm} arm": Path(result.run_dirs[0]).parent for arm, result in report.arms.items()})
