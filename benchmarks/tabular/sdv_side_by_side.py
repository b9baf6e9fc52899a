"""mlgen's tabular generators (TVAE, CTGAN) side by side with SDV 2.0's, on the same data and splits.

Every arm is fitted on the same real training rows (mlgen's TabularDataModule split of the shipped table,
decoded through its fitted transform, so all tables compare in one space), samples as many rows as the
training split has, and is scored by the same functions as `mlgen-synth` on tables: utility (logistic
regression and random forest trained on the synthetic rows, tested on the real test split, as a ratio to
the same model trained on real rows), fidelity (`mlgen.metrics.tabular_fidelity`, and SDMetrics' own
quality score as a cross-check), privacy (DCR and exact copies against the holdout baseline) and the CPU
time of the fit (process time, all threads). SDV runs at its defaults and with its epochs set so that it
takes as many optimizer steps as mlgen's model of the same kind. Every arm is repeated over `--seeds` (the
split stays fixed; the seed sets initialisation, training noise and sampling) and the summary gives the
mean and standard deviation over seeds.

SDV is BSL-licensed and never a dependency of mlgen: run this script in its own venv (benchmarks/tabular/README.md).
    python -m benchmarks.tabular.sdv_side_by_side --out OUT [--datasets breast_cancer fair] [--kinds tvae ctgan]
        [--seeds 0 1 2] [--quick] [--mlgen-only]
`--mlgen-only` re-measures mlgen's arms alone after a change to mlgen's models or configs, against SDV rows of the
same datasets and seeds from an earlier run; after a change to the table's reading or decoding (which gives SDV its
training rows) run every arm again.
writes OUT/results.json (one row per dataset, arm and seed) and OUT/results.md (mean ± std over seeds, then
every row).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from benchmarks.config import QUICK, compose
from mlgen.data.synthetic import class_labels
from mlgen.metrics.tabular_fidelity import fidelity
from mlgen.metrics.tabular_privacy import privacy
from mlgen.metrics.tabular_utility import SKLEARN_MODELS, sklearn_accuracy

SDV_BATCH = 500  # SDV's default batch size for both synthesizers
SDV_KINDS = ("tvae", "ctgan")  # the mlgen kinds that SDV has a synthesizer of


def real_splits(dataset: str) -> tuple[Any, pd.DataFrame, pd.DataFrame]:
    """The datamodule of `data=<dataset>` with its defaults, and its decoded train and test rows."""
    from mlgen.config.instantiate import instantiate_datamodule

    cfg = compose([*QUICK, f"data={dataset}"], Path("unused"))
    data = instantiate_datamodule(cfg.data)
    data.setup("fit")
    return data, data.decode(*data.datasets["train"].tensors), data.decode(*data.datasets["test"].tensors)


def seed_everything(seed: int) -> None:
    """SDV and CTGAN draw from the global generators of torch, NumPy and Python."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def fit_mlgen(dataset: str, model: str, out: Path, epochs: int | None, seed: int) -> tuple[Any, float, int, int]:
    """Train `experiment=<dataset>_<model>`; the model, its CPU seconds, its passes over the data (epochs
    times `data.passes_per_epoch`) and batch size."""
    from mlgen.checkpoints.load import load_model
    from mlgen.tasks.train import train

    overrides = [*QUICK, f"experiment={dataset}_{model}", "test=false", f"seed={seed}"]
    if epochs is not None:
        overrides.append(f"trainer.max_epochs={epochs}")
    cfg = compose(overrides, out)
    from mlgen.data import tabular

    tabular._FITTED.clear()  # the transform's fit (Bayesian GMMs) counts in mlgen's time, as SDV's own does in its fit
    start = time.process_time()
    result = train(cfg)
    seconds = time.process_time() - start
    trained, _ = load_model(result.output_dir / "checkpoints" / "last.ckpt")
    return trained, seconds, int(cfg.trainer.max_epochs) * int(cfg.data.get("passes_per_epoch", 1)), int(cfg.data.batch_size)


def sample_mlgen(model: Any, data: Any, n: int, labels_like: pd.Series, seed: int = 0) -> pd.DataFrame:
    """`n` rows in the real training split's class proportions, decoded to the table's columns."""
    counts = labels_like.value_counts()
    classes = list(data.spec.classes)
    labels = class_labels(n, len(classes), [int(counts.get(c, 0)) for c in classes])
    torch.manual_seed(seed)
    with torch.no_grad():
        rows = model.eval().sample(len(labels), labels)
    return data.decode(rows, labels)  # the tabular models bound their own tanh spans


def sdv_metadata(data: Any) -> Any:
    from sdv.metadata import Metadata

    columns = {c.name: {"sdtype": "categorical" if c.kind == "categorical" else "numerical"} for c in data.spec.columns}
    columns[data.spec.target] = {"sdtype": "categorical"}
    return Metadata.load_from_dict({"tables": {"table": {"columns": columns}}})


def fit_sdv(kind: str, data: Any, train: pd.DataFrame, epochs: int) -> tuple[Any, float]:
    from sdv.single_table import CTGANSynthesizer, TVAESynthesizer

    synthesizer = {"ctgan": CTGANSynthesizer, "tvae": TVAESynthesizer}[kind](sdv_metadata(data), epochs=epochs, enable_gpu=False)
    start = time.process_time()
    synthesizer.fit({"table": train})  # SDV 2.0 takes a dict of one table
    return synthesizer, time.process_time() - start


def sdv_steps_per_epoch(kind: str, n: int) -> int:
    """CTGAN: one step per full batch (`len // batch_size`, at least 1); TVAE: a DataLoader with drop_last=False."""
    return max(n // SDV_BATCH, 1) if kind == "ctgan" else math.ceil(n / SDV_BATCH)


def score(synthetic: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, data: Any) -> dict[str, float]:
    target = data.spec.target
    categorical = [c.name for c in data.spec.columns if c.kind == "categorical"] + [target]
    out: dict[str, float] = {}
    for model in SKLEARN_MODELS:
        real = sklearn_accuracy(train, test, target, categorical, model)
        out[f"{model}_ratio"] = sklearn_accuracy(synthetic[train.columns], test, target, categorical, model) / real
    out["utility_ratio"] = float(np.mean([out[f"{m}_ratio"] for m in SKLEARN_MODELS]))
    quality = fidelity(train, synthetic, categorical)
    out.update(fidelity=quality.score, column_shapes=quality.column_shapes, pair_trends=quality.pair_trends)
    leak = privacy(train, test, synthetic, categorical)
    out.update(dcr_synthetic_median=leak.dcr_synthetic_median, dcr_holdout_median=leak.dcr_holdout_median,
               exact_copy_share=leak.exact_copy_share, holdout_match_share=leak.holdout_match_share)
    try:  # SDMetrics' own quality score, as a cross-check of mlgen's fidelity (only where sdmetrics is installed)
        from sdmetrics.reports.single_table import QualityReport

        report = QualityReport()
        report.generate(train, synthetic[train.columns], sdv_metadata(data).to_dict()["tables"]["table"], verbose=False)
        out["sdmetrics_quality"] = float(report.get_score())
    except ImportError:
        pass
    return out


def run_dataset(dataset: str, kinds: list[str], seed: int, out: Path, quick: bool, with_sdv: bool = True) -> list[dict[str, Any]]:
    data, train, test = real_splits(dataset)
    rows = []
    for kind in kinds:
        epochs = 2 if quick else None
        run_dir = out / dataset / f"mlgen_{kind}_seed{seed}"
        model, seconds, mlgen_passes, batch = fit_mlgen(dataset, kind, run_dir, epochs, seed)
        steps = mlgen_passes * math.ceil(len(train) / batch)
        synthetic = sample_mlgen(model, data, len(train), train[data.spec.target], seed)
        rows.append({"dataset": dataset, "arm": f"mlgen {kind}", "seed": seed, "epochs": mlgen_passes, "steps": steps,
                     "cpu_s": seconds, **score(synthetic, train, test, data)})
        # no SDV arms: asked for (`--mlgen-only`), or none exists (SDV has no diffusion synthesizer: mlgen's DDPM is
        # read against the TVAE/CTGAN arms)
        if kind not in SDV_KINDS or not with_sdv:
            print(json.dumps(rows[-1:], indent=1), flush=True)
            continue
        matched = math.ceil(steps / sdv_steps_per_epoch(kind, len(train)))
        for label, sdv_epochs in (("defaults", 2 if quick else 300), ("matched steps", 2 if quick else matched)):
            seed_everything(seed)
            synthesizer, seconds = fit_sdv(kind, data, train, sdv_epochs)
            synthetic = synthesizer.sample(num_rows=len(train))
            synthetic = synthetic["table"] if isinstance(synthetic, dict) else synthetic
            rows.append({"dataset": dataset, "arm": f"SDV {kind} ({label})", "seed": seed, "epochs": sdv_epochs,
                         "steps": sdv_epochs * sdv_steps_per_epoch(kind, len(train)), "cpu_s": seconds,
                         **score(synthetic, train, test, data)})
        print(json.dumps(rows[-3:], indent=1), flush=True)
    return rows


COLUMNS = ["dataset", "arm", "seed", "epochs", "steps", "cpu_s", "utility_ratio", "logistic_regression_ratio", "random_forest_ratio",
           "fidelity", "sdmetrics_quality", "dcr_synthetic_median", "dcr_holdout_median", "exact_copy_share", "holdout_match_share"]


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for row in rows:
        cells = [f"{row[c]:.3f}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary(rows: list[dict[str, Any]]) -> str:
    """One line per dataset and arm: mean ± standard deviation over its seeds of every measured column."""
    measured = [c for c in COLUMNS if c not in ("dataset", "arm", "seed", "epochs", "steps")]
    lines = ["| dataset | arm | seeds | steps | " + " | ".join(measured) + " |", "|" + " --- |" * (4 + len(measured))]
    arms = dict.fromkeys((row["dataset"], row["arm"]) for row in rows)
    for dataset, arm in arms:
        group = [row for row in rows if (row["dataset"], row["arm"]) == (dataset, arm)]
        cells = []
        for column in measured:
            values = np.array([row[column] for row in group if column in row], dtype=float)
            spread = values.std(ddof=1) if len(values) > 1 else 0.0
            cells.append(f"{values.mean():.3f} ± {spread:.3f}" if len(values) else "")
        lines.append(f"| {dataset} | {arm} | {len(group)} | {group[0]['steps']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--datasets", nargs="+", default=["breast_cancer", "fair"])
    parser.add_argument("--kinds", nargs="+", default=["tvae", "ctgan"], choices=[*SDV_KINDS, "ddpm"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="2 epochs per arm: checks the script runs, measures nothing")
    parser.add_argument("--mlgen-only", action="store_true", help="mlgen's arms only (SDV's from an earlier run hold unless the table's decoding changed)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for seed in args.seeds:
        for dataset in args.datasets:
            rows += run_dataset(dataset, args.kinds, seed, args.out, args.quick, with_sdv=not args.mlgen_only)
            (args.out / "results.json").write_text(json.dumps(rows, indent=2))  # kept as it grows
    text = f"Mean ± standard deviation over seeds {args.seeds}:\n\n{summary(rows)}\nEvery run:\n\n{markdown(rows)}"
    (args.out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
