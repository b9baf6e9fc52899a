"""The MLP classifier trains on `[D]`-shaped rows from an ArrayDataModule: the data layer and the nets
are not tied to images."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from mlgen.data.arrays import Arrays, ArrayDataModule
from mlgen.models.classifier import Classifier

WIDTH = 8


class Blobs(ArrayDataModule):
    """Two Gaussian classes in WIDTH dimensions, means at -0.5 and +0.5 on every axis, unit noise
    (Bayes accuracy 0.92, reached only by a model that uses all axes together)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(shape=(WIDTH,), num_classes=2, **kwargs)

    def load_splits(self) -> dict[str, Arrays]:
        generator = torch.Generator().manual_seed(0)

        def draw(n: int) -> Arrays:
            y = torch.arange(n) % 2
            return torch.randn(n, WIDTH, generator=generator) + (y[:, None] - 0.5), y

        return {"train": draw(1200), "test": draw(600)}


@pytest.mark.parametrize("in_memory", [True, False])
def test_mlp_classifier_learns_separable_rows(in_memory):
    pl.seed_everything(0, verbose=False)
    data = Blobs(batch_size=32, eval_batch_size=256, val_fraction=0.2, in_memory=in_memory)
    model = Classifier(
        shape=data.shape,
        num_classes=data.num_classes,
        net={"_target_": "mlgen.nets.mlp.MLPClassifierNet", "hidden": [32]},
        optimizer={"_target_": "torch.optim.Adam", "lr": 1e-2},
    )
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=4, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, deterministic=True)
    (before,) = trainer.validate(model, datamodule=data, verbose=False)
    trainer.fit(model, datamodule=data)
    (after,) = trainer.test(model, datamodule=data, verbose=False)
    assert trainer.global_step == 4 * 30  # 960 training rows in batches of 32
    assert after["test/acc"] >= 0.88 and before["val/acc"] < 0.8
    assert after["test/loss"] < 0.5 * before["val/loss"]
