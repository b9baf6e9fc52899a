"""`mlgen-plot`: one PNG per metric family from a CSV-logged run, and a sweep's plots from its trials,
checked by opening the images."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from mlgen.cli import plot as main
from mlgen.tasks.plot import metric_family, sweep_points
from mlgen.tasks.train import train
from mlgen.tracking.sweep_summary import read_trials, write_summary
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


# trial number, status, val/acc (pruned: its last reported value), lr, batch size, val/acc per epoch
TRIALS = [(0, "completed", 0.5, "0.001", "32", [0.3, 0.5]), (1, "completed", 0.7, "0.01", "64", [0.6, 0.7]),
          (2, "failed", None, "1.0", "32", None), (3, "pruned", 0.1, "1e-05", "32", [0.1]),
          (4, "completed", 0.6, "0.003", "128", None)]


@pytest.fixture
def sweep_dir(tmp_path):
    """A sweep as mlgen's sweep summary leaves it: trial.json per trial, trials.json, CSV logs of some trials."""
    for number, status, value, lr, batch, curve in TRIALS:
        run = tmp_path / "sweep" / str(number)
        run.mkdir(parents=True)
        (run / "trial.json").write_text(json.dumps({
            "number": number, "status": status, "objective_name": "val/acc", "objective": value, "run_dir": str(run),
            "overrides": [f"model.optimizer.lr={lr}", f"data.batch_size={batch}", "trainer.max_epochs=2"]}))
        if curve:
            (run / "csv").mkdir()
            (run / "csv" / "metrics.csv").write_text("epoch,step,val/acc\n" + "".join(
                f"{epoch},{10 * epoch + 9},{v}\n" for epoch, v in enumerate(curve)))
    sweep = tmp_path / "sweep"
    write_summary(sweep, read_trials(sweep), "maximize")
    return sweep


def _blobs(path: Path, rgb: tuple[int, int, int]) -> int:
    """Separate marks of one colour in a PNG (markers of a scatter plot, legend entry included)."""
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (640, 400)
        pixels = np.asarray(image.convert("RGB")).astype(int)
    return ndimage.label((np.abs(pixels - rgb).sum(axis=-1) < 40))[1]


def test_sweep_plots_objective_best_so_far_and_each_swept_value(sweep_dir, capsys):
    main([str(sweep_dir)])
    plots = sweep_dir / "plots"
    assert sorted(capsys.readouterr().out.split()) == sorted(
        str(plots / name) for name in ("objective.png", "model.optimizer.lr.png", "data.batch_size.png", "curves.png"))

    points = sweep_points(read_trials(sweep_dir), "maximize")
    assert points.completed == [(0, 0.5), (1, 0.7), (4, 0.6)] and points.pruned == [(3, 0.1)]  # failed: no point
    assert points.best_so_far == [(0, 0.5), (1, 0.7), (3, 0.7), (4, 0.7)]
    assert points.params["model.optimizer.lr"] == [(0.001, 0.5, False), (0.01, 0.7, False), (1e-05, 0.1, True),
                                                   (0.003, 0.6, False)]
    assert [v for v, _, _ in points.params["data.batch_size"]] == [32.0, 64.0, 32.0, 128.0]

    # drawn: 3 completed markers (blue) and 1 pruned cross (red) per figure, plus one of each in the legend
    for name in ("objective.png", "model.optimizer.lr.png"):
        assert _blobs(plots / name, C0) == 3 + 1, name
        assert _blobs(plots / name, C3) == 1 + 1, name
    assert _blobs(plots / "objective.png", C1) >= 1  # the best-so-far line
    with Image.open(plots / "curves.png") as image:  # trials 0, 1 and 3 logged curves
        curves = np.asarray(image.convert("RGB"))
    assert all(_has_colour(curves, c) for c in (C0, C1, C2)) and not _has_colour(curves, C3)


def test_paths_are_printed_whole_for_a_relative_folder(sweep_dir, capsys, monkeypatch):
    monkeypatch.chdir(sweep_dir.parent)
    main([sweep_dir.name])
    printed = capsys.readouterr().out.split()
    assert len(printed) == 4 and all(Path(p).is_absolute() and Path(p).is_file() for p in printed), printed


def test_a_folder_with_no_finished_trial_is_a_run_dir_without_logs(tmp_path):
    (tmp_path / "sweep" / "0").mkdir(parents=True)
    proc = subprocess.run([str(Path(sys.executable).with_name("mlgen-plot")), str(tmp_path / "sweep")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "holds no metrics.csv" in proc.stderr
