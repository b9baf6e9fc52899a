"""Image grids of samples (and reconstructions) of any generative module, every N epochs.

Works for every module with `sample(n, labels=None)` returning images in [-1, 1]; conditional modules
draw the classes in turn when given no labels, so with `nrow = num_classes` each column is one class.
Modules that also have `reconstruct(x, labels)` get a grid of validation images (odd rows) over their
reconstructions (even rows). Grids are upscaled and labelled (`mlgen.tracking.labelled_grid`): the classes
of a conditional module's samples, "data" / "recon" on the rows of reconstructions. They go to
`<dirpath>/<name>_epoch<E>.png` always, and to every logger that takes images: W&B (`WandbLogger.log_image`)
and TensorBoard (`add_image`). A conditional module's samples also go to W&B as a table with one row per
sample (`images/samples_table`: image, label), to filter and sort by class in the W&B UI.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger
from torch import Tensor

from mlgen.errors import ConfigError
from mlgen.tracking.labelled_grid import MIN_SIDE, GridLabels, as_uint8, labelled_grid, sample_grid, upscale


class ImageGrid(pl.Callback):
    """Args:
    every_n_epochs: log after every N-th training epoch (and after the last one).
    n_samples: images in the sample grid.
    n_reconstructions: validation images reconstructed (rounded down to whole rows; 0: none).
    nrow: images per grid row.
    seed: seed of the sampling noise, the same every time so grids compare across epochs
        (the training RNG is left untouched).
    dirpath: folder of the PNG files (default: `<trainer.default_root_dir>/images`).
    min_side: images smaller than this many pixels a side are enlarged (nearest neighbour) to at least it.
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        n_samples: int = 100,
        n_reconstructions: int = 50,
        nrow: int = 10,
        seed: int = 0,
        dirpath: str | None = None,
        min_side: int = MIN_SIDE,
    ) -> None:
        for key, value, low in (("every_n_epochs", every_n_epochs, 1), ("n_samples", n_samples, 1),
                                ("n_reconstructions", n_reconstructions, 0), ("nrow", nrow, 1), ("min_side", min_side, 1)):
            if not isinstance(value, int) or value < low:
                raise ConfigError(f"callbacks.image_grid.{key}={value!r} is invalid: it must be an integer >= {low}. Fix: e.g. callbacks.image_grid.{key}=10.")
        self.every_n_epochs, self.n_samples, self.nrow, self.seed = every_n_epochs, n_samples, nrow, seed
        self.n_reconstructions = n_reconstructions // nrow * nrow
        self.dirpath, self.min_side = dirpath, min_side
        self._reference: tuple[Tensor, Tensor] | None = None

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        max_epochs = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs > 0 else None
        last = bool(trainer.fast_dev_run) or (max_epochs is not None and epoch + 1 >= max_epochs)
        if not trainer.is_global_zero or not ((epoch + 1) % self.every_n_epochs == 0 or last):
            return
        was_training = pl_module.training
        pl_module.eval()
        cuda = [pl_module.device] if pl_module.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=cuda):
            torch.manual_seed(self.seed)
            labels = pl_module.check_labels(self.n_samples, None) if getattr(pl_module, "conditional", False) else None
            samples = pl_module.sample(self.n_samples, labels)
            grids = {"samples": sample_grid(samples, self.nrow, None if labels is None else labels.cpu(), self.min_side)}
            reference = self.reference_batch(trainer, pl_module)
            if reference is not None:
                x, y = reference
                rows = [images.unflatten(0, (-1, self.nrow)) for images in (x, pl_module.reconstruct(x, y))]
                row_names = GridLabels(rows=["data", "recon"] * (len(x) // self.nrow))
                grids["reconstructions"] = labelled_grid(torch.stack(rows, dim=1).flatten(0, 2), self.nrow, row_names,
                                                         self.min_side)
        pl_module.train(was_training)
        for name, grid in grids.items():
            self.write(trainer, name, grid)
        if labels is not None:
            self.log_table(trainer, upscale(samples.detach().float().cpu(), self.min_side), labels.cpu())

    def reference_batch(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> tuple[Tensor, Tensor] | None:
        """The first validation images (whole rows of them), fetched once; None when the module
        can't reconstruct or there is no validation data."""
        if self._reference is None and self.n_reconstructions and hasattr(pl_module, "reconstruct"):
            datamodule = getattr(trainer, "datamodule", None)
            loader = datamodule.val_dataloader() if datamodule is not None else None
            if loader is not None:
                x, y = next(iter(loader))
                rows = min(len(x), self.n_reconstructions) // self.nrow
                if rows:
                    self._reference = (x[: rows * self.nrow], y[: rows * self.nrow])
        if self._reference is None:
            return None
        return self._reference[0].to(pl_module.device), self._reference[1].to(pl_module.device)

    def write(self, trainer: pl.Trainer, name: str, grid: Image.Image) -> None:
        """The grid as a PNG in the run dir and as an image in W&B and TensorBoard: the same pixels everywhere."""
        folder = Path(self.dirpath or Path(trainer.default_root_dir) / "images")
        folder.mkdir(parents=True, exist_ok=True)
        grid.save(folder / f"{name}_epoch{trainer.current_epoch:03d}.png")
        pixels = np.asarray(grid)  # uint8 HWC: W&B reads uint8 as 0-255 (floats in [0, 1] would show black)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key=f"images/{name}", images=[pixels], step=trainer.global_step)
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(f"images/{name}", pixels, global_step=trainer.global_step, dataformats="HWC")

    @staticmethod
    def log_table(trainer: pl.Trainer, samples: Tensor, labels: Tensor) -> None:
        """A conditional module's (upscaled) samples as a W&B table (image, label), beside the grid."""
        loggers = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        if not loggers:
            return
        import wandb

        pixels = as_uint8(samples).permute(0, 2, 3, 1).numpy()
        rows = [[wandb.Image(image.squeeze(-1) if image.shape[-1] == 1 else image), int(label)]
                for image, label in zip(pixels, labels)]
        for logger in loggers:
            logger.log_table(key="images/samples_table", columns=["image", "label"], data=rows, step=trainer.global_step)
