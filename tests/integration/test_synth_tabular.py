"""`mlgen-synth` on a table end to end: a TVAE trained on a small CSV the test writes, then the fair
arms plus the table's utility, fidelity and privacy scores, its JSON, PNG and W&B summary and table."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pandas as pd
import pytest
import torch

from mlgen.tasks.synth import synth
from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config
from tests.helpers.wandb_runs import offline_run_dirs, read_offline_run

WANDB_QUICK = [*(o for o in CPU_QUICK if not o.startswith("logger=")), "logger=wandb"]


def small_table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Two numbers, a text column and a date; the label follows income and city, so the table is learnable."""
    rng = np.random.default_rng(seed)
    income = np.where(rng.random(n) < 0.5, rng.normal(30_000, 3_000, n), rng.normal(90_000, 8_000, n)).round(2)
    city = rng.choice(["berlin", "lima", "osaka"], n, p=[0.5, 0.3, 0.2])
    label = np.where((income - 60_000) / 10_000 + 4.0 * (city == "lima") > 0, "high", "low")  # linear in both
    joined = (pd.Timestamp("2018-01-01") + pd.to_timedelta(rng.integers(0, 2000, n), unit="D")).strftime("%Y-%m-%d")
    return pd.DataFrame({"age": rng.integers(18, 80, n), "income": income, "city": city, "joined": joined, "label": label})


@pytest.fixture(scope="module")
def table_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("table") / "table.csv"
    small_table().to_csv(path, index=False)
    return ["data=csv", f"data.path={path}", "data.target=label"]


@pytest.fixture(scope="module")
def tvae_ckpt(tmp_path_factory, table_data):
    out = tmp_path_factory.mktemp("tvae")
    cfg = compose_config("train", [*CPU_QUICK, *table_data, "model=tvae", "trainer.max_epochs=40", "callbacks=default",
                                   "callbacks.model_summary=null", "model.iwae_samples=2", "test=false"], out)
    return str(train(cfg).output_dir / "checkpoints" / "last.ckpt")


def test_mlgen_synth_scores_a_tables_samples(tvae_ckpt, table_data, tmp_path):
    cfg = compose_config("synth", [*WANDB_QUICK, *table_data, "model=classifier", f"generator_ckpt={tvae_ckpt}", "seeds=[0]",
                                   "budget.steps=40", "low_data.train_fraction=0.2"], tmp_path)
    report = synth(cfg)
    assert report.steps_matched and all(arm.steps == [40] for arm in report.arms.values())
    table = report.tabular
    assert table["rows"]["train"] == table["rows"]["synthetic"] and table["rows"]["holdout"] == 60
    utility = table["utility"]
    assert utility["logistic_regression_real_acc"] >= 0.8  # the label is a function of the features
    assert 0.0 <= utility["logistic_regression_ratio"] <= 1.2
    assert utility["mlp_ratio"] == pytest.approx(report.scores()["cas_ratio"])
    fidelity = table["fidelity"]
    assert set(fidelity["columns"]) == {"age", "income", "city", "joined", "label"}
    assert fidelity["columns"]["city"]["metric"] == "tv" and fidelity["columns"]["income"]["metric"] == "ks"
    assert fidelity["columns"]["joined"]["metric"] == "ks"  # dates scored as the days they are encoded as
    assert 0.5 < fidelity["score"] < 1.0  # a trained TVAE is neither perfect nor unrelated
    privacy = table["privacy"]
    assert privacy["exact_copy_share"] <= 0.05  # continuous income: a TVAE does not reproduce rows exactly
    assert privacy["dcr_synthetic_median"] > 0 and privacy["dcr_holdout_median"] > 0
    saved = json.loads((tmp_path / "synth_report.json").read_text())
    assert saved["tabular"]["fidelity"]["score"] == pytest.approx(fidelity["score"])
    png = tmp_path / "marginals.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    summaries = [read_offline_run(d) for d in offline_run_dirs(tmp_path)]
    (run,) = [r for r in summaries if "synth/table/fidelity/score" in r.summary]
    assert run.summary["synth/table/fidelity/score"] == pytest.approx(fidelity["score"])
    assert run.summary["synth/table/privacy/exact_copy_share"] == pytest.approx(privacy["exact_copy_share"])
    assert run.summary["synth/steps"] == 40
    (logged,) = run.rows_with("synth/columns._type")  # the reader flattens nested values with dots
    assert logged["synth/columns._type"] == "table-file" and logged["synth/columns.nrows"] == 5


def test_samples_of_quantile_encoded_columns_are_not_cut_to_plus_minus_one(table_data, tmp_path):
    """`data.continuous=quantile` encodes a number as a standard-normal scalar (not bounded by [-1, 1]): the
    synthetic training set keeps the generator's values, so decoded samples reach past the real column's
    16th and 84th percentiles (what -1 and 1 decode to), where clamping (right for images) would stop them all."""
    from mlgen.config.instantiate import instantiate_datamodule

    quantile = [*table_data, "data.continuous=quantile"]
    out = tmp_path / "tvae"
    cfg = compose_config("train", [*CPU_QUICK, *quantile, "model=tvae", "data.batch_size=256", "data.passes_per_epoch=10",
                                   "trainer.max_epochs=30", "trainer.check_val_every_n_epoch=30", "callbacks=default",
                                   "callbacks.model_summary=null", "model.iwae_samples=2", "test=false"], out)
    ckpt = train(cfg).output_dir / "checkpoints" / "last.ckpt"
    real_data = [f"data.real.{o.removeprefix('data.')}" for o in quantile if o != "data=csv"]
    cfg = compose_config("train", [*CPU_QUICK, "data=synthetic", "data@data.real=csv", *real_data,
                                   f"data.generator_ckpt={ckpt}", "model=classifier"], tmp_path / "synth")
    synthetic = instantiate_datamodule(cfg.data)
    synthetic.prepare_data()
    synthetic.setup("fit")
    table = synthetic.real
    income = next(s.start for s in table.layout if s.column == "income" and s.kind == "value")
    x, y = table.datasets["synthetic"].tensors
    assert x[:, income].abs().max() > 1.1, "the quantile scalars were clamped to [-1, 1]"
    decoded = table.decode(x, y)["income"]
    edges = x[:2].clone()
    edges[:, income] = torch.tensor([-1.0, 1.0])  # the values a scalar clamped to [-1, 1] decodes to at most
    low, high = table.decode(edges, y[:2])["income"]
    assert ((decoded < low - 1) | (decoded > high + 1)).sum() >= 3, (decoded.min(), decoded.max(), low, high)


def test_a_table_generators_training_note_is_an_mlgen_synth_command_that_runs(tmp_path):
    """The end of `mlgen-train` on a table prints the `mlgen-synth` command for its generator: the run's data
    options (quoted for a shell, here a column name Hydra needs escaped) and the absolute checkpoint path."""
    path = tmp_path / "table.csv"
    small_table().to_csv(path)  # with pandas' index: a column 'Unnamed: 0', dropped below
    data = ["data=csv", f"data.path={path}", "data.target=label", "+data.columns={Unnamed\\: 0: drop}"]
    run = train(compose_config("train", [*CPU_QUICK, *data, "model=tvae", "trainer.max_epochs=2", "callbacks=default",
                                         "callbacks.model_summary=null", "model.iwae_samples=2", "test=false"], tmp_path / "run"))
    (note,) = run.notes
    command = shlex.split(note.split("privacy): ", 1)[1])  # as a shell splits the pasted line
    assert command == ["mlgen-synth", *data, f"generator_ckpt={(tmp_path / 'run' / 'checkpoints' / 'last.ckpt').resolve()}"]
    report = synth(compose_config("synth", [*CPU_QUICK, *command[1:], "model=classifier", "seeds=[0]", "budget.steps=10",
                                            "low_data.train_fraction=0.2"], tmp_path / "synth"))
    assert "Unnamed: 0" not in report.tabular["fidelity"]["columns"] and report.tabular["rows"]["holdout"] == 60
