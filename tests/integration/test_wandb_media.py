"""A generative run logs its image grids to W&B (read back from the offline run)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mlgen.tasks.train import train
from tests.helpers.config import compose_config
from tests.helpers.wandb_runs import offline_run_dirs, read_offline_run


@pytest.mark.slow
def test_vae_run_logs_sample_and_reconstruction_grids_as_wandb_images(tmp_path):
    out = tmp_path / "run"
    train(compose_config("train", ["experiment=digits_vae", "trainer=cpu", "logger=wandb", "trainer.max_epochs=2",
                                   "trainer.enable_progress_bar=false", "callbacks.model_summary=null",
                                   "model.iwae_samples=10", "model.iwae_chunk=10"], out))
    (run_dir,) = offline_run_dirs(out / "wandb")
    run = read_offline_run(run_dir)
    assert run.run["run_group"] == "digits_vae" and run.exit_code == 0
    assert {"val/elbo", "val/kl"} <= set(run.rows_with("val/elbo")[0])
    assert "test/iwae_nll" in run.summary

    for name in ("samples", "reconstructions"):
        rows = run.rows_with(f"images/{name}._type")
        assert [row[f"images/{name}._type"] for row in rows] == ["images/separated"] * 2  # one grid per epoch
        logged = [run_dir / "files" / row[f"images/{name}.filenames"][0] for row in rows]
        written = sorted((out / "images").glob(f"{name}_epoch*.png"))
        assert len(written) == 2
        for wandb_png, run_png in zip(logged, written):  # W&B holds the very grids written to the run dir
            pixels = _pixels(wandb_png)
            assert pixels.shape[0] > 8 * 10 and pixels.std() > 20  # not a blank (or all-black) image
            assert np.array_equal(pixels, _pixels(run_png))
    assert not np.array_equal(_pixels(logged[0]), _pixels(logged[1]))  # the grid changed as the VAE trained


def _pixels(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))
