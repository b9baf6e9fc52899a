"""`mlgen-plot`: one PNG per metric family from a CSV-logged run, checked by opening the images."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlgen.cli import plot as main
from mlgen.tasks.plot import metric_family
from mlgen.tasks.train import train
from tests.helpers.config import CPU_QUICK, compose_config

# matplotlib's default colour cycle: series 1..4 of a figure
C0, C1, C2, C3 = (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("plot") / "run"
    train(compose_config("train", [*CPU_QUICK, "trainer.max_epochs=3", "trainer.log_every_n_steps=5"], out))
    return out


def _has_colour(pixels: np.ndarray, rgb: tuple[int, int, int]) -> bool:
    return bool((np.abs(pixels[..., :3].astype(int) - rgb).sum(axis=-1) < 30).sum() > 20)


def test_one_png_per_metric_family_with_each_split_drawn(csv_run, capsys):
    main([str(csv_run)])
    written = capsys.readouterr().out.split()
    assert sorted(written) == sorted(str(csv_run / "plots" / f"{f}.png") for f in ("acc", "f1", "loss"))
    images = {}
    for name in ("acc", "f1", "loss"):
        with Image.open(csv_run / "plots" / f"{name}.png") as image:
            assert image.format == "PNG" and image.size == (640, 400)
            images[name] = np.asarray(image.convert("RGB"))
    # loss and acc: train/*_epoch, train/*_step, val/, test/; f1 (validation and test only): val/, test/
    for name in ("loss", "acc"):
        assert all(_has_colour(images[name], c) for c in (C0, C1, C2, C3)), name
    assert all(_has_colour(images["f1"], c) for c in (C0, C1)) and not _has_colour(images["f1"], C2)
    assert not np.array_equal(images["acc"], images["f1"])


def test_epoch_axis_and_output_folder(csv_run, tmp_path, capsys):
    main([str(csv_run), "--x", "epoch", "--out", str(tmp_path / "figs")])
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["acc.png", "f1.png", "loss.png"]


@pytest.mark.parametrize(("name", "family"), [("train/loss_step", "loss"), ("train/loss_epoch", "loss"),
                                              ("val/elbo", "elbo"), ("test/iwae_nll", "iwae_nll"), ("lr-Adam", "lr-Adam")])
def test_metric_family(name, family):
    assert metric_family(name) == family


def test_run_without_csv_logs_says_how_to_get_them(tmp_path):
    (tmp_path / "run").mkdir()
    proc = subprocess.run([str(Path(sys.executable).with_name("mlgen-plot")), str(tmp_path / "run")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "holds no metrics.csv" in proc.stderr and "logger=csv" in proc.stderr
    assert "Traceback" not in proc.stderr
