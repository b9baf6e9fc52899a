"""TVAE, CTGAN and the diffusion family's MLP denoiser through `mlgen-train` on tables: they learn
breast_cancer (samples of class c look like class c to a classifier trained on real rows; a classifier trained
on samples beats the majority class on real test rows; marginals move towards the real ones), TVAE and CTGAN
resume bit-identically (DDPM: tests/integration/test_diffusion_resume.py), and `mlgen-sample` writes their rows
as CSV / Parquet with the table's columns, dtypes, category names and the target."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import ks_2samp
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlgen.checkpoints.load import load_model
from mlgen.data.tabular import TabularDataModule
from mlgen.errors import ConfigError
from mlgen.tasks.sample import sample
from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config
from tests.helpers.resume import straight_halfway_resumed

# no progress-bar callback in the runs' configs: ProgressForStdout is not (yet) on the checkpoint allowlist
QUICK = [*CPU_QUICK, "callbacks=default", "test=false", "callbacks.progress_bar=null"]


def _table(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    plan = rng.choice(["basic", "plus", "pro"], n, p=[0.6, 0.3, 0.1])
    usage = rng.gamma(2.0, 10.0, n).round(1)
    churned = np.where((plan == "basic") & (usage < 20), "yes", "no")
    since = (pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1000, n), unit="D")).strftime("%d.%m.%Y")
    return pd.DataFrame({"plan": plan, "usage": usage, "tickets": rng.integers(0, 5, n), "since": since, "churned": churned})


def _logistic(frame: pd.DataFrame, target: str):
    features = frame.drop(columns=[target])
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(features, frame[target])


@pytest.mark.slow
# measured (seed 0): TVAE 30 epochs of the experiment's 10 passes (300 full-batch steps): agreement 0.44 -> 0.83, TSTR 0.58 -> 0.94, mean KS 0.28 -> 0.13;
# CTGAN 100 epochs with the experiment's auxiliary classifier: agreement 0.50 -> 0.997, TSTR 0.58 -> 0.93, mean KS
# 0.25 -> 0.16 (without the classifier, 150 epochs: agreement 0.59, at the majority class, TSTR 0.87, KS 0.12)
# DDPM (breast_cancer_ddpm: 20 epochs of 10 passes, 1,400 steps): agreement 0.90, TSTR 0.95, mean KS 0.15
@pytest.mark.parametrize(("model", "epochs", "agreement", "utility"),
                         [("tvae", 30, 0.65, 0.9), ("ctgan", 100, 0.9, 0.8), ("ddpm", 20, 0.75, 0.85)])
def test_generators_learn_breast_cancer_class_by_class(tmp_path, model, epochs, agreement, utility):
    data = TabularDataModule(dataset="breast_cancer")
    data.setup("fit")
    train_rows, test_rows = data.table.pool.iloc[data.table.train_rows.numpy()], data.table.test
    real = _logistic(train_rows, "diagnosis")
    labels = torch.from_numpy(data.spec.labels(train_rows))[torch.randint(len(train_rows), (1000,),
                                                                          generator=torch.Generator().manual_seed(0))]

    def score(ckpt) -> tuple[float, float, float]:
        generator, _ = load_model(ckpt)
        torch.manual_seed(0)
        rows = data.decode(generator.sample(len(labels), labels), labels)
        assert (rows["diagnosis"].to_numpy() == np.array(data.class_names)[labels.numpy()]).all()
        numeric = [c for c in rows.columns if c != "diagnosis"]
        ks = float(np.mean([ks_2samp(train_rows[c], rows[c]).statistic for c in numeric]))
        tstr = _logistic(rows, "diagnosis").score(test_rows.drop(columns="diagnosis"), test_rows["diagnosis"])
        return real.score(rows.drop(columns="diagnosis"), rows["diagnosis"]), tstr, ks

    overrides = [*QUICK, f"experiment=breast_cancer_{model}", "seed=0"]
    untrained = train(compose_config("train", [*overrides, "trainer.max_epochs=1", "trainer.limit_train_batches=1"],
                                     tmp_path / "untrained"))
    trained = train(compose_config("train", [*overrides, f"trainer.max_epochs={epochs}"], tmp_path / "trained"))
    before = score(untrained.output_dir / "checkpoints" / "last.ckpt")
    after = score(trained.output_dir / "checkpoints" / "last.ckpt")
    majority = test_rows["diagnosis"].value_counts(normalize=True).max()  # 0.59
    # samples asked as class c are recognised as c by a classifier of real rows, more often than before training
    assert after[0] >= max(agreement, before[0] + 0.05), (before, after)
    assert after[1] >= max(utility, majority + 0.1), (before, after)  # train on synthetic, test on real
    assert after[2] < before[2] - 0.05, (before, after)  # mean KS of the 30 marginals falls


@pytest.mark.slow
@pytest.mark.parametrize("model", ["tvae", "ctgan"])
def test_resume_after_epoch_2_ends_with_identical_weights(tmp_path, model):
    # validation and last.ckpt after every epoch: breast_cancer_tvae does both after its last epoch only, so the
    # run stopped after epoch 2 would end without a last.ckpt to resume from, and without the val/elbo its
    # objective reads; one pass per epoch (tvae's 10 would make 10x the steps)
    common = [*QUICK, f"experiment=breast_cancer_{model}", "trainer.max_epochs=4", "trainer.deterministic=true", "seed=3",
              "data.train_fraction=0.3", "data.batch_size=40", "trainer.check_val_every_n_epoch=1",
              "++callbacks.last_checkpoint.every_n_epochs=1", "data.passes_per_epoch=1"]
    straight, halfway, again = straight_halfway_resumed(tmp_path, common)
    assert straight.keys() == again.keys()
    for name in straight:
        assert torch.equal(straight[name], again[name]), name
    weight = next(k for k in straight if k.endswith("weight"))
    assert not torch.equal(halfway[weight], straight[weight])  # it trained on after the stop


@pytest.mark.parametrize("model", ["tvae", "ctgan", "ddpm_cond"])  # ddpm_cond: the MLP denoiser, model=ddpm's default
def test_mlgen_sample_writes_csv_and_parquet_with_the_tables_columns(tmp_path, model):
    table = _table()
    path = tmp_path / "customers.csv"
    table.to_csv(path, index=False)
    run = train(compose_config("train", [*QUICK, f"model={model}", "data=csv", f"data.path={path}", "data.target=churned",
                                         "trainer.max_epochs=2"], tmp_path / "run"))
    ckpt = run.output_dir / "checkpoints" / "last.ckpt"
    written = {}
    for suffix in ("csv", "parquet"):
        cfg = compose_config("sample", [f"ckpt_path={ckpt}", "n=50", "labels=[0,1]", f"out={tmp_path / 'rows'}.{suffix}"],
                             tmp_path / f"sample_{suffix}")
        (out,) = sample(cfg)
        written[suffix] = pd.read_csv(out) if suffix == "csv" else pd.read_parquet(out)
    for frame in written.values():
        assert list(frame.columns) == list(table.columns) and len(frame) == 50
        assert list(frame["churned"]) == ["no", "yes"] * 25  # labels=[0,1] repeated; classes sorted
        assert set(frame["plan"]) <= {"basic", "plus", "pro"}
        assert (frame["tickets"] == frame["tickets"].round()).all()
        since = pd.to_datetime(frame["since"], format="%d.%m.%Y")  # dates as the file wrote them, in its range
        assert since.between(pd.Timestamp("2020-01-01"), pd.Timestamp("2022-09-27")).all()
    parquet = written["parquet"]
    assert parquet["tickets"].dtype == table["tickets"].dtype and parquet["usage"].dtype == table["usage"].dtype
    assert parquet["since"].dtype == table["since"].dtype  # text dates stay text
    pd.testing.assert_frame_equal(written["csv"], parquet, check_dtype=False)  # the same seeded rows

    default = compose_config("sample", [f"ckpt_path={ckpt}", "n=8"], tmp_path / "default")
    assert [p.name for p in sample(default)] == ["samples.csv"]  # a table's default output is a CSV

    # without labels the rows follow the training split's class frequencies (largest remainders), shuffled
    train_counts = torch.load(ckpt, map_location="cpu", weights_only=True)["TabularDataModule"]["transform"]["class_counts"]
    cfg = compose_config("sample", [f"ckpt_path={ckpt}", "n=200", f"out={tmp_path / 'freq.csv'}"], tmp_path / "freq")
    drawn = pd.read_csv(sample(cfg)[0])["churned"]
    expected = [round(200 * c / sum(train_counts)) for c in train_counts]
    assert [int((drawn == name).sum()) for name in ("no", "yes")] == expected and train_counts[0] != train_counts[1]
    assert drawn.iloc[:100].nunique() == 2  # not sorted by class

    # classes by the names the target column holds, as well as by index
    named = compose_config("sample", [f"ckpt_path={ckpt}", "n=6", "labels=[yes,no]", f"out={tmp_path / 'named.csv'}"],
                           tmp_path / "named")
    assert list(pd.read_csv(sample(named)[0])["churned"]) == ["yes", "no"] * 3
    wrong = compose_config("sample", [f"ckpt_path={ckpt}", "n=6", "labels=maybe"], tmp_path / "wrong")
    with pytest.raises(ConfigError, match=r"labels='maybe' is invalid.*\['no', 'yes'\], by name or index.*Fix: e.g. labels=yes"):
        sample(wrong)
