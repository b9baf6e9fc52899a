"""Synthetic training data from a conditional generator, and `mlgen-synth` end to end on digits."""

from __future__ import annotations

import json
import math
import re
import os
import subprocess

import pytest
import torch

from mlgen.config.instantiate import instantiate_model
from mlgen.errors import ConfigError
from mlgen.tasks.synth import synth
from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config
from tests.helpers.grids import assert_readable_grid
from tests.helpers.wandb_runs import offline_run_dirs, read_offline_run
from tests.helpers.wandb_tables import logged_tables


def _generator(tmp_path_factory, model: str, epochs: int) -> str:
    out = tmp_path_factory.mktemp(model)
    cfg = compose_config("train", [*CPU_QUICK, "experiment=digits_vae", f"model={model}", f"trainer.max_epochs={epochs}",
                                   "callbacks=default", "callbacks.model_summary=null", "model.iwae_samples=2", "test=false"], out)
    return str(train(cfg).output_dir / "checkpoints" / "last.ckpt")


@pytest.fixture(scope="module")
def cvae_ckpt(tmp_path_factory):
    return _generator(tmp_path_factory, "cvae", epochs=30)


def _datamodule(ckpt, tmp_path, **options):
    cfg = compose_config("train", ["data=synthetic", f"data.generator_ckpt={ckpt}", "data.real.binarize=true"], tmp_path)
    for key, value in options.items():
        cfg.data[key] = value
    from mlgen.config.instantiate import instantiate_datamodule

    datamodule = instantiate_datamodule(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def _train_set(datamodule):
    return datamodule.real.datasets["train"].tensors


def test_samples_are_class_balanced_and_seeded(cvae_ckpt, tmp_path):
    x, y = _train_set(_datamodule(cvae_ckpt, tmp_path / "a", size=500))
    assert x.shape == (500, 1, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert torch.bincount(y, minlength=10).tolist() == [50] * 10
    x_again, _ = _train_set(_datamodule(cvae_ckpt, tmp_path / "b", size=500))
    assert torch.equal(x, x_again)
    x_other, _ = _train_set(_datamodule(cvae_ckpt, tmp_path / "c", size=500, seed=1))
    assert not torch.equal(x, x_other)


def test_class_proportions_and_cache(cvae_ckpt, tmp_path):
    datamodule = _datamodule(cvae_ckpt, tmp_path, size=300, class_proportions=[2, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    _, y = _train_set(datamodule)
    assert torch.bincount(y, minlength=10).tolist()[:3] == [200, 100, 0]
    (cache,) = (tmp_path / "synthetic").glob("samples_*.pt")
    assert datamodule.cache_path() == cache


def test_mix_ratio_adds_samples_to_all_real_examples(cvae_ckpt, tmp_path):
    real = _datamodule(cvae_ckpt, tmp_path / "real", mix_ratio=0.0)
    n_real = len(real.real.datasets["train"])
    x_real, _ = _train_set(real)
    mixed = _datamodule(cvae_ckpt, tmp_path / "mixed", mix_ratio=0.25)
    x, y = _train_set(mixed)
    assert len(x) == n_real + round(n_real / 3)
    assert torch.equal(x[:n_real], x_real)  # every real example is kept
    assert not list((tmp_path / "real" / "synthetic").glob("*.pt"))  # mix_ratio=0 draws nothing


def test_unconditional_generator_is_refused(tmp_path_factory, tmp_path):
    vae = _generator(tmp_path_factory, "vae", epochs=1)
    with pytest.raises(ConfigError, match=r"unconditional VAE.*model=cvae"):
        _datamodule(vae, tmp_path, size=10)


def test_missing_generator_checkpoint_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"data.generator_ckpt=.*nope.ckpt does not exist"):
        _datamodule(tmp_path / "nope.ckpt", tmp_path)


@pytest.fixture(scope="module")
def chance_ckpt(tmp_path_factory):
    """A CVAE after one optimizer step: its samples say nothing about their labels."""
    out = tmp_path_factory.mktemp("chance")
    cfg = compose_config("train", [*CPU_QUICK, "experiment=digits_cvae", "trainer.max_epochs=1", "+trainer.limit_train_batches=1",
                                   "callbacks=default", "callbacks.model_summary=null", "test=false"], out)
    return str(train(cfg).output_dir / "checkpoints" / "last.ckpt")


def test_a_budget_shorter_than_an_epoch_is_refused_before_any_arm_trains(chance_ckpt, tmp_path):
    cfg = compose_config("synth", [*CPU_QUICK, "experiment=digits_synth", f"generator_ckpt={chance_ckpt}", "budget.steps=3"], tmp_path)
    with pytest.raises(ConfigError, match=r"budget.steps=3 is invalid: the longest arm's epoch takes (\d+) optimizer steps") as err:
        synth(cfg)
    longest = int(re.search(r"takes (\d+) optimizer", str(err.value)).group(1))
    assert longest == math.ceil(1294 / cfg.data.batch_size)  # digits' real training split (the longest arm), batch 64
    assert f"Fix: set budget.steps={longest} or more" in str(err.value)
    assert not [p for p in tmp_path.iterdir() if p.name != "synthetic"]  # no arm ran


def test_arms_run_matched_steps_and_a_chance_generator_gains_nothing_over_the_control(chance_ckpt, tmp_path):
    cfg = compose_config("synth", [*CPU_QUICK, "experiment=digits_synth", f"generator_ckpt={chance_ckpt}", "seeds=[0,1]",
                                   "trainer.max_epochs=2"], tmp_path)
    report = synth(cfg)
    n_real = report.arms["real"].train_examples
    assert report.steps == 2 * math.ceil(n_real / cfg.data.batch_size)  # budget: 2 epochs of the full real split
    assert set(report.arms) == {"real", "synthetic", "low_data_real", "low_data_mixed", "low_data_control"}
    for name, arm in report.arms.items():  # read back from every run's last checkpoint
        assert arm.steps == [report.steps, report.steps], name
    low, mixed = report.arms["low_data_real"], report.arms["low_data_mixed"]
    assert mixed.train_examples == 2 * low.train_examples and low.epochs > mixed.epochs  # same steps, not same epochs
    assert report.arms["low_data_control"].train_examples == mixed.train_examples
    scores = report.scores()
    assert scores["cas"] < 0.3  # chance is 0.1
    assert scores["generator_gain"] <= 0.02, scores  # mixed - control: nothing attributable to the generator
    saved = json.loads((tmp_path / "synth_report.json").read_text())
    assert saved["steps_matched"] is True and saved["arms"]["low_data_control"]["steps"] == [report.steps] * 2
    assert saved["generator_gain"] == pytest.approx(scores["generator_gain"])
    assert "adds nothing beyond" in saved["verdict"] and f"{report.steps} optimizer steps per arm" in saved["verdict"]


@pytest.mark.slow
def test_mlgen_synth_reports_cas_and_low_data_gain(cvae_ckpt, tmp_path):
    log_dir = tmp_path / "logs"
    done = subprocess.run(
        ["mlgen-synth", "experiment=digits_synth", f"generator_ckpt={cvae_ckpt}", "trainer.max_epochs=8", "seeds=[0]",
         "trainer.enable_progress_bar=false", "callbacks.model_summary=null", f"paths.log_dir={log_dir}"],
        check=False, capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "WANDB_DATA_DIR": str(tmp_path / "wandb_data")},  # where W&B stages tables
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Classification" not in done.stderr
    (path,) = log_dir.glob("synth/runs/*/synth_report.json")
    report = json.loads(path.read_text())
    assert report["real_acc"] >= 0.9
    assert 0.5 <= report["cas"] <= 1.0  # a 30-epoch 8x8 CVAE; MNIST numbers are in the README
    assert report["cas_ratio"] == pytest.approx(report["cas"] / report["real_acc"])
    assert report["low_data_gain"] == pytest.approx(report["low_data_mixed_acc"] - report["low_data_real_acc"])
    assert report["generator_gain"] == pytest.approx(report["low_data_mixed_acc"] - report["low_data_control_acc"])
    assert report["steps_matched"] and f"{report['low_data_fraction']:.0%}" in report["verdict"]
    assert "CAS / real" in done.stdout
    runs = [read_offline_run(d) for d in offline_run_dirs(path.parent)]
    (run,) = [r for r in runs if "synth/cas" in r.summary]
    assert run.summary["synth/cas_ratio"] == pytest.approx(report["cas_ratio"])
    # where it wrote, whole paths: the report, the grid of synthetic images, the cached samples, every arm
    lines = done.stdout.splitlines()
    grid = path.parent / "synthetic_samples.png"
    assert f"report: {path}" in lines and f"sample grid: {grid}" in lines
    assert f"synthetic samples: {path.parent / 'synthetic'}" in lines
    for arm in report["arms"]:
        assert f"{arm.replace('_', ' ')} arm: {path.parent / arm}" in lines and (path.parent / arm / "seed_0" / "checkpoints").is_dir()
    assert_readable_grid(grid, 8, 10, 10, "left")  # ten of each class, one class per row, labelled
    # the report in W&B: a table of the arms, a bar plot of their test accuracy, the grid of synthetic images
    (arms,) = logged_tables(run, "synth/arms")
    rows = {row[0]: dict(zip(arms["columns"], row)) for row in arms["data"]}
    assert set(rows) == set(report["arms"]) and rows["synthetic"]["trained on"] == "synthetic data only (CAS)"
    assert rows["synthetic"]["test_acc"] == pytest.approx(report["cas"]) and rows["real"]["seeds"] == 1
    bar = run.config["_wandb.visualize.synth/test_acc"]["panel_config"]
    assert bar["panelDefId"] == "wandb/bar/v0" and bar["fieldSettings"] == {"label": "arm", "value": "test_acc"}
    (logged,) = run.rows_with("synth/samples._type")
    assert (run.path / "files" / logged["synth/samples.path"]).read_bytes() == grid.read_bytes()


def test_mnist_generator_recipe_is_a_conditional_sngan_that_trains(mnist_like_root, tmp_path):
    """experiment=mnist_cgan_sn (the README's CAS generator): hinge loss, every discriminator weight
    spectrally normalised, projection conditioning, 100 epochs; two steps of it train on 28x28 data."""
    overrides = [*CPU_QUICK, "experiment=mnist_cgan_sn", f"data.root={mnist_like_root}", "+trainer.fast_dev_run=2",
                 "data.batch_size=8", "callbacks.image_grid.n_samples=8"]
    cfg = compose_config("train", overrides, tmp_path)
    assert (cfg.model.loss, cfg.model.conditional, cfg.trainer.max_epochs) == ("hinge", True, 100)
    model = instantiate_model(cfg.model)
    weights = [m for m in model.discriminator.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.Embedding))]
    assert len(weights) == 4 and all(hasattr(m, "parametrizations") for m in weights)  # 2 convs, score, projection
    metrics = train(cfg).metrics
    assert torch.isfinite(torch.tensor([metrics["train/d_loss_step"], metrics["train/g_loss_step"]])).all()
    assert model.sample(4, torch.tensor([0, 1, 2, 3])).shape == (4, 1, 28, 28)
