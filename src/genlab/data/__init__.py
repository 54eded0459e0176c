"""Data: sources that read or make image data sets, and the DataModule that batches them."""

from genlab.data.arrays import ImageArrays
from genlab.data.datamodule import ImageDataModule

__all__ = ["ImageArrays", "ImageDataModule"]
