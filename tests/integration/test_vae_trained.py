"""Briefly trained digits models: the ELBO curve rises, the IWAE bound is below -ELBO and tightens with k,
a CVAE's samples are recognised as their class by an mlgen-trained classifier, and `mlgen-sample`
writes grids (and rejects bad labels) for both checkpoints."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from mlgen.checkpoints.load import load_model
from mlgen.config.instantiate import instantiate_datamodule
from mlgen.errors import CheckpointError, ConfigError
from mlgen.metrics.label_agreement import label_agreement
from mlgen.tasks.sample import sample
from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config
from tests.helpers.grids import assert_readable_grid

EPOCHS = 10


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("trained")
    common = [*CPU_QUICK, "callbacks=default", "model.iwae_samples=200", f"trainer.max_epochs={EPOCHS}", "data.batch_size=16"]
    return {
        "vae": train(compose_config("train", [*common, "experiment=digits_vae"], root / "vae")),
        "cvae": train(compose_config("train", [*common, "experiment=digits_cvae", "test=false"], root / "cvae")),
        "classifier": train(compose_config("train", [*CPU_QUICK, "trainer.max_epochs=5", "test=false"], root / "clf")),
    }


@pytest.mark.slow
def test_elbo_curve_rises_and_iwae_bound_is_below_negative_elbo(runs):
    result = runs["vae"]
    with open(result.output_dir / "csv" / "metrics.csv") as f:
        curve = [float(row["val/elbo"]) for row in csv.DictReader(f) if row.get("val/elbo")]
    assert len(curve) == EPOCHS
    assert curve[-1] > curve[0] + 2  # nats per example (seen: -24.3 after epoch 1, -20.1 after 10)
    assert result.metrics["test/iwae_nll"] < -result.metrics["test/elbo"]


@pytest.mark.slow
def test_iwae_estimate_tightens_with_more_samples(runs):
    model, run_config = load_model(runs["vae"].best_checkpoint)
    datamodule = instantiate_datamodule(run_config["data"])
    datamodule.setup("test")
    x, y = next(iter(datamodule.test_dataloader()))
    torch.manual_seed(0)
    with torch.no_grad():
        neg_elbo = sum(model.elbo_terms(x, y)).mean().item()
        nll = {k: model.iwae_nll(x, y, k=k).mean().item() for k in (1, 10, 100)}
    assert nll[1] == pytest.approx(neg_elbo, abs=0.5)  # k=1 is a one-sample ELBO
    assert nll[1] > nll[10] + 0.4  # seen: 19.5, 18.85, 18.73 nats
    assert nll[10] > nll[100] + 0.05


@pytest.mark.slow
def test_cvae_samples_are_classified_as_their_label(runs):
    generator, _ = load_model(runs["cvae"].best_checkpoint)
    classifier, _ = load_model(runs["classifier"].best_checkpoint)
    torch.manual_seed(0)
    assert label_agreement(generator.eval(), classifier.eval(), num_classes=10, n_per_class=50) >= 0.9  # seen: 0.99


def sample_config(ckpt, out, *extra):
    return compose_config("sample", [f"ckpt_path={ckpt}", f"out={out}", *extra], out.parent)


@pytest.mark.slow
def test_sample_writes_png_grid_and_tensor_for_vae_and_cvae(runs, tmp_path):
    paths = sample(sample_config(runs["vae"].best_checkpoint, tmp_path / "vae" / "grid.png", "n=20", "nrow=5"))
    assert paths == [tmp_path / "vae" / "grid.png"]
    with Image.open(paths[0]) as image:
        assert image.mode == "RGB"
    assert_readable_grid(paths[0], 8, 5, 4)  # 4 rows of 5 digits upscaled to 32 px, no labels (a VAE)
    (larger,) = sample(sample_config(runs["vae"].best_checkpoint, tmp_path / "vae" / "large.png", "n=20", "nrow=5", "min_side=64"))
    with Image.open(larger) as image:
        assert image.size == (5 * (8 * 8 + 2) + 2, 4 * (8 * 8 + 2) + 2)  # 8x upscaled, 2 px padding
    cvae = runs["cvae"].best_checkpoint
    png, pt = sample(sample_config(cvae, tmp_path / "cvae" / "sevens.png", "n=30", "labels=7", "save_tensor=true"))
    saved = torch.load(pt)
    assert saved["samples"].shape == (30, 1, 8, 8) and saved["labels"].tolist() == [7] * 30
    assert -1 <= saved["samples"].min() and saved["samples"].max() <= 1
    classifier, _ = load_model(runs["classifier"].best_checkpoint)
    with torch.no_grad():
        assert (classifier.eval()(saved["samples"]).argmax(1) == 7).float().mean() >= 0.8
    _, pt = sample(sample_config(cvae, tmp_path / "cvae" / "cycle.png", "n=5", "labels=[2,4]", "save_tensor=true"))
    assert torch.load(pt)["labels"].tolist() == [2, 4, 2, 4, 2]


@pytest.mark.slow
@pytest.mark.parametrize(("model", "labels", "expected"), [
    ("vae", "3", "labels=3 was given, but the checkpoint holds an unconditional VAE"),
    ("cvae", "10", "labels=10 is invalid: the model has 10 classes, so labels must be integers from 0 to 9"),
    ("cvae", "[1,-1]", "labels=[1, -1] is invalid"),
])
def test_bad_labels_are_config_errors(runs, tmp_path, model, labels, expected):
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        sample(sample_config(runs[model].best_checkpoint, tmp_path / "x.png", f"labels={labels}"))
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_sample_rejects_a_bad_n_and_a_checkpoint_that_cannot_sample(runs, tmp_path):
    with pytest.raises(ConfigError, match=r"n=0 is invalid: it must be a positive integer\. Fix: e\.g\. n=64"):
        sample(sample_config(runs["vae"].best_checkpoint, tmp_path / "x.png", "n=0"))
    with pytest.raises(CheckpointError, match="holds a Classifier, which cannot sample"):
        sample(sample_config(runs["classifier"].best_checkpoint, tmp_path / "x.png"))
    assert not (tmp_path / "x.png").exists()


def run_cli(args, cwd):
    cli = Path(sys.executable).with_name("mlgen-sample")
    env = {**os.environ, "WANDB_MODE": "disabled"}
    return subprocess.run([str(cli), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


@pytest.mark.slow
def test_mlgen_sample_cli_writes_a_grid_and_rejects_bad_labels(runs, tmp_path):
    cvae = runs["cvae"].best_checkpoint
    done = run_cli([f"ckpt_path={cvae}", "n=100", "nrow=10", f"out={tmp_path / 'grid.png'}"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert_readable_grid(tmp_path / "grid.png", 8, 10, 10, "top")  # the classes in turn: one class per column
    bad = run_cli([f"ckpt_path={runs['vae'].best_checkpoint}", "labels=3", f"out={tmp_path / 'bad.png'}"], tmp_path)
    assert bad.returncode == 2
    assert "labels=3 was given, but the checkpoint holds an unconditional VAE" in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr and not (tmp_path / "bad.png").exists()
