"""Data sources: plain objects that fetch (``prepare``) and read (``load``) one data set.

A source has a ``name``, ``prepare() -> None`` (check the files, download them when asked to,
else raise DataNotFoundError) and ``load(split) -> ImageArrays`` for split "train" or "test".
"""

from __future__ import annotations

from typing import Protocol

from genlab.data.arrays import ImageArrays
from genlab.data.cifar10 import CIFAR10
from genlab.data.idx import MNIST, FashionMNIST
from genlab.data.image_folder import ImageFolder
from genlab.data.shapes import Shapes

__all__ = ["CIFAR10", "MNIST", "FashionMNIST", "ImageFolder", "Shapes", "Source"]


class Source(Protocol):
    """What ImageDataModule needs from a data set."""

    name: str

    def prepare(self) -> None: ...

    def load(self, split: str) -> ImageArrays: ...
