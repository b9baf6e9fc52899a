"""Train on synthetic, test on real: the Classification Accuracy Score (CAS) of a generator and
what its samples add in a low-data setting. Every arm is an ordinary `train()` run."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from mlgen.checkpoints.allowlist import trusting_config_targets
from mlgen.checkpoints.load import load_checkpoint
from mlgen.tasks.train import train
from mlgen.tracking.loggers import finish_loggers, instantiate_loggers

SYNTHETIC_TARGET = "mlgen.data.synthetic.SyntheticDataModule"


@dataclass
class SynthReport:
    """Test accuracies on real data of the four arms, and the scores derived from them."""

    real_acc: float
    cas: float
    cas_ratio: float
    low_data_fraction: float
    low_data_real_acc: float
    low_data_mixed_acc: float
    low_data_gain: float
    run_dirs: dict[str, str]

    def verdict(self) -> str:
        change = "beats" if self.low_data_gain > 0 else "does not beat"
        return (f"with {self.low_data_fraction:.0%} of the real training data, real + synthetic {change} real alone "
                f"({self.low_data_mixed_acc:.4f} vs {self.low_data_real_acc:.4f}, {self.low_data_gain:+.4f})")


def arm_config(cfg: DictConfig, name: str, mix_ratio: float, train_fraction: float) -> DictConfig:
    """The run config of one arm: the real data wrapped in the synthetic datamodule."""
    arm = cfg.copy()
    out = Path(cfg.paths.output_dir)
    real = OmegaConf.to_container(cfg.data, resolve=True)
    if real.get("_target_") == SYNTHETIC_TARGET:  # the user picked data=synthetic: use its real part
        real = real["real"]
    real["train_fraction"] = train_fraction
    with open_dict(arm):
        arm.data = {
            "_target_": SYNTHETIC_TARGET, "_recursive_": False, "generator_ckpt": cfg.generator_ckpt, "real": real,
            "shape": real["shape"], "num_classes": real["num_classes"], "mix_ratio": mix_ratio,
            **OmegaConf.to_container(cfg.synthetic, resolve=True), "cache_dir": str(out / "synthetic"),
        }
        arm.paths.output_dir = str(out / name)
        if arm.get("logger") and arm.logger.get("wandb"):
            arm.logger.wandb.name = name
    return arm


@trusting_config_targets
def synth(cfg: DictConfig) -> SynthReport:
    """Run the four arms and write `synth_report.json` into the run dir."""
    load_checkpoint(cfg.generator_ckpt)  # refuse a bad or untrusted generator before the first arm trains
    low = cfg.low_data
    arms = {
        "real": (0.0, 1.0),
        "synthetic": (1.0, 1.0),
        "low_data_real": (0.0, low.train_fraction),
        "low_data_mixed": (low.mix_ratio, low.train_fraction),
    }
    acc, dirs = {}, {}
    for name, (mix_ratio, fraction) in arms.items():
        result = train(arm_config(cfg, name, mix_ratio, fraction))
        acc[name], dirs[name] = result.metrics["test/acc"], str(result.output_dir)
    report = SynthReport(
        real_acc=acc["real"], cas=acc["synthetic"], cas_ratio=acc["synthetic"] / acc["real"],
        low_data_fraction=float(low.train_fraction), low_data_real_acc=acc["low_data_real"],
        low_data_mixed_acc=acc["low_data_mixed"], low_data_gain=acc["low_data_mixed"] - acc["low_data_real"],
        run_dirs=dirs,
    )
    out = Path(cfg.paths.output_dir)
    (out / "synth_report.json").write_text(json.dumps({**asdict(report), "verdict": report.verdict()}, indent=2))
    log_summary(cfg, report)
    return report


def log_summary(cfg: DictConfig, report: SynthReport) -> None:
    """The scores as summary entries of one run of each logger that keeps summaries (W&B)."""
    loggers = instantiate_loggers(cfg.get("logger"))
    for logger in loggers:
        summary = getattr(getattr(logger, "experiment", None), "summary", None)
        if summary is not None:
            summary.update({f"synth/{k}": v for k, v in asdict(report).items() if isinstance(v, float)})
    finish_loggers(loggers)


def print_report(report: SynthReport, out_dir: Path) -> None:
    from rich.table import Table

    from mlgen.tasks.report import console, print_paths

    table = Table(title="mlgen-synth: test accuracy on real data", header_style="bold")
    table.add_column("classifier trained on")
    table.add_column("test acc", justify="right")
    rows: list[tuple[str, Any]] = [
        ("real data", report.real_acc),
        ("synthetic data only (CAS)", report.cas),
        ("CAS / real", report.cas_ratio),
        (f"{report.low_data_fraction:.0%} of real", report.low_data_real_acc),
        (f"{report.low_data_fraction:.0%} of real + synthetic", report.low_data_mixed_acc),
        ("gain from synthetic (low data)", report.low_data_gain),
    ]
    for name, value in rows:
        table.add_row(name, f"{value:+.4f}" if name.startswith("gain") else f"{value:.4f}")
    out = console()
    out.print(table)
    out.print(report.verdict(), markup=False)
    print_paths(out, report=out_dir / "synth_report.json", **{f"{arm} arm": path for arm, path in report.run_dirs.items()})
