"""The image-grid callback: PNGs every N epochs and on the last one, the same grids in W&B (offline) and
TensorBoard, and any module with only `sample()` (no reconstructions, no labels) works too."""

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import (
    IMAGES,
    EventAccumulator,
)
from torch import nn

from mlgen.data.digits import DigitsDataModule
from mlgen.errors import ConfigError
from mlgen.tasks.train import train
from mlgen.tracking.image_grid import ImageGrid
from tests.helpers.config import CPU_QUICK, compose_config
from tests.helpers.grids import assert_readable_grid, cell
from tests.helpers.wandb_runs import offline_run_dirs, read_offline_run
from tests.helpers.wandb_tables import logged_tables


@pytest.mark.slow
def test_grids_go_to_png_wandb_and_tensorboard_every_n_epochs(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb_data"))  # where W&B stages a table's images
    overrides = [*CPU_QUICK, "experiment=digits_cvae", "logger=[wandb,tensorboard]", "trainer.max_epochs=3",
                 "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", "test=false",
                 "callbacks.image_grid.every_n_epochs=2", "callbacks.image_grid.n_samples=20",
                 "callbacks.image_grid.n_reconstructions=10", "callbacks.image_grid.nrow=10"]
    run = tmp_path / "run"
    train(compose_config("train", overrides, run))
    # every second epoch (index 1) and the last one (index 2), never epoch 0
    assert sorted(p.name for p in (run / "images").iterdir()) == [
        "reconstructions_epoch001.png", "reconstructions_epoch002.png", "samples_epoch001.png", "samples_epoch002.png"]
    # 8x8 digits upscaled to 32 px, 2 rows of 10 under a header naming each column's class
    assert_readable_grid(run / "images" / "samples_epoch002.png", 8, 10, 2, "top")
    assert_readable_grid(run / "images" / "reconstructions_epoch002.png", 8, 10, 2, "left")  # data / recon
    media = sorted((run / "wandb").glob("offline-run-*/files/media/images/images/*.png"))
    assert sorted(p.name.split("_")[0] for p in media) == ["reconstructions"] * 2 + ["samples"] * 2
    with Image.open(media[-1]) as logged, Image.open(run / "images" / "samples_epoch002.png") as written:
        assert np.array_equal(np.asarray(logged.convert("RGB")), np.asarray(written))  # same pixels, not black
        assert np.asarray(written).max() > 100  # mean images of a barely trained model: grey, not black
    # the conditional model's samples as a W&B table, one row per sample: the image (upscaled) and its class
    (run_dir,) = offline_run_dirs(run / "wandb")
    tables = logged_tables(read_offline_run(run_dir), "images/samples_table")
    assert len(tables) == 2 and all(table["columns"] == ["image", "label"] for table in tables)
    images, labels = zip(*tables[-1]["data"])
    assert list(labels) == list(range(10)) * 2
    assert {(image["_type"], image["width"], image["height"]) for image in images} == {("image-file", 32, 32)}
    with Image.open(tables[-1]["files"][images[3]["path"]]) as three:
        assert three.size == (32, 32) and np.asarray(three).std() > 0
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={IMAGES: 0})
    events.Reload()
    assert sorted(events.Tags()[IMAGES]) == ["images/reconstructions", "images/samples"]
    samples = events.Images("images/samples")
    with Image.open(run / "images" / "samples_epoch002.png") as written:
        assert len(samples) == 2 and (samples[-1].width, samples[-1].height) == written.size
    assert samples[0].step < samples[1].step


class OnlySamples(pl.LightningModule):
    """The least a generative module offers: `sample(n, labels=None)`; nothing to reconstruct."""

    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Parameter(torch.zeros(1, 8, 8))

    def training_step(self, batch, batch_idx):
        return (batch[0] - torch.tanh(self.image)).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def sample(self, n, labels=None):
        assert labels is None  # not conditional: the callback must not pass labels
        return torch.tanh(self.image).expand(n, -1, -1, -1)


def test_any_module_with_sample_gets_a_sample_grid(tmp_path):
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=2, limit_val_batches=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[ImageGrid(n_samples=6, nrow=3, dirpath=str(tmp_path / "grids"))])
    trainer.fit(OnlySamples(), datamodule=DigitsDataModule(root=str(tmp_path), batch_size=32))
    assert [p.name for p in (tmp_path / "grids").iterdir()] == ["samples_epoch000.png"]
    assert_readable_grid(tmp_path / "grids" / "samples_epoch000.png", 8, 3, 2)
    assert cell(8) == 34  # upscaled 4x: 32 px and 2 px padding


def test_min_side_sets_the_upscaling_and_is_checked(tmp_path):
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=1, limit_val_batches=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[ImageGrid(n_samples=6, nrow=3, dirpath=str(tmp_path), min_side=64)])
    trainer.fit(OnlySamples(), datamodule=DigitsDataModule(root=str(tmp_path), batch_size=32))
    with Image.open(tmp_path / "samples_epoch000.png") as image:
        assert image.size == (3 * 66 + 2, 2 * 66 + 2)  # 8x8 enlarged 8x
    with pytest.raises(ConfigError, match=r"callbacks\.image_grid\.min_side=0 is invalid: it must be an integer >= 1"):
        ImageGrid(min_side=0)
