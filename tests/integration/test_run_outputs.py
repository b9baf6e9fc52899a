"""What a run says at its end: a results table that is never empty (a GAN without sample-quality metrics
shows its losses and how to get FID / label agreement) and the whole path of everything each command wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlgen.tasks.evaluate import evaluate
from mlgen.tasks.report import print_result, sample_quality_notes
from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config

QUICK_GAN = [*CPU_QUICK, "experiment=digits_cgan", "trainer.max_epochs=1", "+trainer.limit_train_batches=3",
             "+trainer.limit_val_batches=1", "callbacks.image_grid.n_samples=10"]


def printed(capsys, result, title):
    print_result(result, title=title)
    return capsys.readouterr().out.splitlines()


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    return train(compose_config("train", QUICK_GAN, tmp_path_factory.mktemp("gan") / "run"))


def test_gan_without_feature_ckpt_shows_its_losses_and_how_to_get_fid(gan_run, capsys):
    lines = printed(capsys, gan_run, "mlgen-train")
    rows = {line.split("│")[1].strip(): float(line.split("│")[2]) for line in lines if "(last epoch)" in line}
    assert set(rows) == {"train/d_loss (last epoch)", "train/g_loss (last epoch)"}
    assert rows["train/d_loss (last epoch)"] == pytest.approx(gan_run.metrics["train/d_loss_epoch"], abs=1e-4)
    (note,) = [line for line in lines if line.startswith("No sample-quality metrics")]
    assert "FID/KID and label agreement" in note and "mlgen-train model=classifier data=digits" in note
    assert "model.metrics.feature_ckpt=<that run dir>/checkpoints/last.ckpt" in note and "label_agreement" in note


def test_sample_quality_notes_only_where_sample_quality_is_missing(monkeypatch):
    class Classifier:
        pass

    class Generator:
        conditional = False

        def sample(self, n, labels=None):
            raise AssertionError

    assert sample_quality_notes(Classifier(), {}) == []
    assert sample_quality_notes(Generator(), {"test/fid_clf": 3.0}) == []
    [note] = sample_quality_notes(Generator(), {"test/loss": 1.0})
    assert "FID/KID need a classifier" in note and "label" not in note

    class Table:  # a datamodule of table rows (TabularDataModule) decodes them
        def decode(self, rows, labels=None):
            raise AssertionError

    from hydra.core.hydra_config import HydraConfig

    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)  # no Hydra run (an earlier test's may be set)
    [note] = sample_quality_notes(Generator(), {"test/loss": 1.0}, Table())
    assert note.startswith("To score the generated rows (utility on real test rows, fidelity, privacy): run mlgen-synth")
    assert note.endswith("trained with and generator_ckpt='<this run dir>/checkpoints/last.ckpt'")  # no Hydra run here


def test_train_and_eval_print_the_whole_path_of_what_they_wrote(gan_run, tmp_path, capsys):
    run = gan_run.output_dir.resolve()
    lines = printed(capsys, gan_run, "mlgen-train")
    assert f"run dir: {gan_run.output_dir}" in lines and f"best checkpoint: {gan_run.best_checkpoint}" in lines
    for name, path in (("last checkpoint", run / "checkpoints" / "last.ckpt"), ("images", run / "images"),
                       ("metrics CSV", run / "csv" / "metrics.csv")):
        assert f"{name}: {path}" in lines and path.exists()

    evaluated = evaluate(compose_config("eval", [f"ckpt_path={gan_run.best_checkpoint}", "logger=csv", "trainer=cpu",
                                                 "trainer.enable_progress_bar=false"], tmp_path / "eval"))
    lines = printed(capsys, evaluated, "mlgen-eval")
    assert f"tested checkpoint: {gan_run.best_checkpoint}" in lines and f"run dir: {tmp_path / 'eval'}" in lines
    # a GAN's test step logs nothing without a feature extractor: no empty table, but what to do
    assert lines[0] == "mlgen-eval: no metrics were logged." and lines[1].startswith("No sample-quality metrics")
    for line in lines[2:]:  # every line names a path that exists
        name, path = line.split(": ", 1)
        assert Path(path).exists(), line


@pytest.mark.slow
def test_mlgen_sample_prints_the_whole_path_of_a_relative_out(gan_run, tmp_path):
    cli = Path(sys.executable).with_name("mlgen-sample")
    env = {**os.environ, "MLGEN_LOG_DIR": str(tmp_path / "logs"), "WANDB_MODE": "disabled"}
    done = subprocess.run([str(cli), f"ckpt_path={gan_run.best_checkpoint}", "n=10", "nrow=10", "out=grids/cgan.png",
                           "save_tensor=true"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-2:] == [f"wrote {tmp_path / 'grids' / 'cgan.png'}", f"wrote {tmp_path / 'grids' / 'cgan.pt'}"]
    assert (tmp_path / "grids" / "cgan.png").is_file()


def test_the_epoch_line_of_a_batch_job_shows_the_epochs_training_means(tmp_path, capsys):
    """stdout not a terminal (a Slurm job's file): one line per epoch with the epoch's mean training loss and
    accuracy (the numbers the loggers get as `*_epoch`) and its validation values, not the last step's values."""
    import csv

    run = train(compose_config("train", [*CPU_QUICK, "trainer.enable_progress_bar=true", "trainer.max_epochs=2",
                                         "data.train_fraction=0.3", "test=false"], tmp_path / "run"))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert [line.split(" (")[0] for line in lines] == ["epoch 1/2 done", "epoch 2/2 done"]
    with open(run.output_dir / "csv" / "metrics.csv") as handle:
        means = [row for row in csv.DictReader(handle) if row.get("train/loss_epoch")]
    for line, row in zip(lines, means, strict=True):
        shown = dict(zip(line.split()[7::2], line.split()[8::2]))  # after "epoch E/N done (step S, T s)"
        assert float(shown["train/loss"]) == pytest.approx(float(row["train/loss_epoch"]), rel=1e-3), line
        assert float(shown["train/acc"]) == pytest.approx(float(row["train/acc_epoch"]), rel=1e-3), line
        assert "val/acc" in shown and not any(name.endswith("_step") for name in shown), line
