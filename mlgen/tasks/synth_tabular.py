"""`mlgen-synth` on a table: the synthetic-only arm's samples, decoded to the original columns, scored
for utility (a scikit-learn model trained on them, tested on real rows, next to the MLP arms), fidelity
(`mlgen.metrics.tabular_fidelity`) and privacy (`mlgen.metrics.tabular_privacy`), with a PNG of real
vs synthetic marginals."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig
from rich.console import Console

from mlgen.config.checks import check_choice
from mlgen.metrics.tabular_fidelity import fidelity
from mlgen.metrics.tabular_privacy import privacy
from mlgen.metrics.tabular_utility import SKLEARN_MODELS, sklearn_accuracy


def decoded_splits(real_data: Any, synthetic_data: Any) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Real training rows, real test (holdout) rows and synthetic rows, all through the same transform
    (real rows are decoded from their encoding too, so a copied row compares equal), dates as days since
    1970 so that the scores read them as the numbers they are encoded as."""
    table = real_data.real

    def decoded(data: Any, split: str) -> pd.DataFrame:
        frame = data.decode(*data.datasets[split].tensors)
        return frame.assign(**{c.name: c.numbers(frame[c.name]) for c in table.spec.dates})

    return decoded(table, "train"), decoded(table, "test"), decoded(synthetic_data.real, "train")


def evaluate_table(cfg: DictConfig, real_data: Any, synthetic_data: Any, scores: dict[str, float], out: Path) -> dict[str, Any]:
    """Utility, fidelity and privacy of the synthetic-only arm's samples; writes `marginals.png`."""
    model = cfg.tabular.sklearn_model
    check_choice("tabular.sklearn_model", model, SKLEARN_MODELS)
    spec = real_data.real.spec
    categorical = [c.name for c in spec.columns if c.kind == "categorical"] + [spec.target]
    train, test, synthetic = decoded_splits(real_data, synthetic_data)
    real_acc = sklearn_accuracy(train, test, spec.target, categorical, model, cfg.get("seed") or 0)
    synthetic_acc = sklearn_accuracy(synthetic, test, spec.target, categorical, model, cfg.get("seed") or 0)
    quality = fidelity(train, synthetic, categorical)
    leak = privacy(train, test, synthetic, categorical)
    png = write_marginals(train, synthetic, categorical, out / "marginals.png", dates=[c.name for c in spec.dates])
    return {
        "rows": {"train": len(train), "holdout": len(test), "synthetic": len(synthetic)},
        "utility": {
            "mlp_real_acc": scores["real_acc"], "mlp_synthetic_acc": scores["cas"], "mlp_ratio": scores["cas_ratio"],
            f"{model}_real_acc": real_acc, f"{model}_synthetic_acc": synthetic_acc,
            f"{model}_ratio": synthetic_acc / real_acc if real_acc > 0 else 0.0,
            "low_data_gain": scores["low_data_gain"], "generator_gain": scores["generator_gain"],
        },
        "fidelity": {
            "score": quality.score, "column_shapes": quality.column_shapes, "pair_trends": quality.pair_trends,
            "columns": {name: {"statistic": stat, "metric": metric} for name, (stat, metric) in quality.columns.items()},
            "pairs": {name: {"difference": diff, "metric": metric} for name, (diff, metric) in quality.pairs.items()},
        },
        "privacy": {
            "dcr_synthetic_median": leak.dcr_synthetic_median, "dcr_holdout_median": leak.dcr_holdout_median,
            "dcr_ratio": leak.dcr_ratio, "exact_copy_share": leak.exact_copy_share,
            "holdout_match_share": leak.holdout_match_share,
        },
        "marginals_png": str(png),
    }


def write_marginals(real: pd.DataFrame, synthetic: pd.DataFrame, categorical: list[str], path: Path, columns: int = 4,
                    dates: Sequence[str] = ()) -> Path:
    """One panel per column: overlaid density histograms (numbers) or category shares (categories); `dates`
    hold days since 1970, which is matplotlib's own date axis, so their ticks read as dates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(real.columns)
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        if name in categorical:
            p = real[name].astype(str).value_counts(normalize=True)
            q = synthetic[name].astype(str).value_counts(normalize=True).reindex(p.index.union(synthetic[name].astype(str).unique()), fill_value=0.0)
            levels = list(q.index)
            p = p.reindex(levels, fill_value=0.0)
            at = np.arange(len(levels))
            ax.bar(at - 0.2, p.to_numpy(), 0.4, label="real")
            ax.bar(at + 0.2, q.to_numpy(), 0.4, label="synthetic")
            ax.set_xticks(at, [str(v)[:12] for v in levels], rotation=45, ha="right", fontsize=7)
        else:
            values = real[name].dropna().to_numpy(dtype=float)
            bins = np.histogram_bin_edges(values, bins=30)
            ax.hist(values, bins=bins, density=True, alpha=0.5, label="real")
            ax.hist(synthetic[name].dropna().to_numpy(dtype=float), bins=bins, density=True, alpha=0.5, label="synthetic")
            if name in dates:
                locator = mdates.AutoDateLocator(maxticks=4)
                ax.xaxis.set_major_locator(locator)
                ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.set_title(name, fontsize=9)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def summary_entries(tabular: dict[str, Any]) -> dict[str, float]:
    """Flat `synth/table/...` numbers for a W&B summary."""
    entries = {f"synth/table/utility/{k}": v for k, v in tabular["utility"].items()}
    entries.update({f"synth/table/fidelity/{k}": tabular["fidelity"][k] for k in ("score", "column_shapes", "pair_trends")})
    entries.update({f"synth/table/privacy/{k}": v for k, v in tabular["privacy"].items()})
    return entries


def wandb_column_table(tabular: dict[str, Any]) -> Any:
    """Per-column fidelity as a `wandb.Table` (column, metric, statistic, score)."""
    import wandb

    rows = [[name, c["metric"], c["statistic"], 1.0 - c["statistic"]] for name, c in tabular["fidelity"]["columns"].items()]
    return wandb.Table(columns=["column", "metric", "statistic", "score"], data=rows)


def print_tabular(out: Console, tabular: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"synthetic table ({tabular['rows']['synthetic']} rows) against the real one "
                        f"({tabular['rows']['train']} training, {tabular['rows']['holdout']} holdout rows)", header_style="bold")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in tabular["utility"].items():
        table.add_row(f"utility: {name}", f"{value:.4f}")
    for name in ("score", "column_shapes", "pair_trends"):
        table.add_row(f"fidelity: {name}", f"{tabular['fidelity'][name]:.4f}")
    for name, value in tabular["privacy"].items():
        table.add_row(f"privacy: {name}", f"{value:.4f}")
    out.print(table)
    out.print(f"marginals: {tabular['marginals_png']}", markup=False)
