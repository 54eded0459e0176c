"""Saves the model's picture grids (samples, reconstructions, ...) as PNG and logs them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger

from genlab.utils.images import make_grid, save_png


def log_image(logger: Logger, key: str, grid: np.ndarray, step: int) -> None:
    """Send a (H, W, C) uint8 grid to a logger that can show images (W&B, TensorBoard)."""
    if isinstance(logger, WandbLogger):
        logger.log_image(key=key, images=[grid], step=step)
    elif isinstance(logger, TensorBoardLogger):
        logger.experiment.add_image(key, grid, global_step=step, dataformats="HWC")


class ImageGrids(Callback):
    """Every ``every_n_epochs`` training epochs and at the end of training, asks the module for
    ``pictures(batch) -> {name: Grid}`` and writes ``<dirpath>/<name>_epoch<E>.png``; the final
    grids are ``<dirpath>/<name>.png``. ``batch`` is the first ``num_reconstructions`` images of
    the validation split (the test split when there is none or it is empty)."""

    def __init__(
        self, dirpath: str, every_n_epochs: int = 1, num_reconstructions: int = 8, scale: int = 2
    ):
        if every_n_epochs < 1:
            raise ValueError(f"callbacks.image_grids.every_n_epochs={every_n_epochs} must be >= 1")
        self.dirpath = Path(dirpath)
        self.every_n_epochs = every_n_epochs
        self.num_reconstructions = num_reconstructions
        self.scale = scale
        self.saved: dict[str, Path] = {}

    def _save_all(self, trainer: Trainer, module: LightningModule, suffix: str) -> None:
        if not trainer.is_global_zero:
            return
        datamodule = trainer.datamodule
        split = "val" if len(getattr(datamodule, "val_set", ())) > 0 else "test"
        batch = datamodule.sample_batch(split, self.num_reconstructions)
        was_training = module.training
        module.eval()
        grids = module.pictures(batch)
        module.train(was_training)
        for name, grid in grids.items():
            array = make_grid(grid.images, nrow=grid.nrow)
            path = save_png(self.dirpath / f"{name}{suffix}.png", array, scale=self.scale)
            self.saved[name] = path
            for logger in trainer.loggers:
                log_image(logger, f"pictures/{name}", array, step=trainer.global_step)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if epoch % self.every_n_epochs == 0:
            self._save_all(trainer, pl_module, f"_epoch{epoch:03d}")

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._save_all(trainer, pl_module, "")
