"""The contract every data source keeps, checked on each of them over tiny on-disk data."""

from pathlib import Path

import pytest
import torch

from genlab.data import ImageArrays, ImageDataModule
from genlab.data.sources import CIFAR10, MNIST, FashionMNIST, ImageFolder, Shapes

# name -> (build from the data root, (C, H, W), num_classes)
SOURCES = {
    "shapes": (lambda root: Shapes(num_train=40, num_test=10), (1, 32, 32), 3),
    "mnist": (lambda root: MNIST(str(root)), (1, 28, 28), 10),
    "fashion_mnist": (lambda root: FashionMNIST(str(root)), (1, 28, 28), 10),
    "cifar10": (lambda root: CIFAR10(str(root)), (3, 32, 32), 10),
    "image_folder": (lambda root: ImageFolder(str(root / "images"), 16), (3, 16, 16), 0),
}


@pytest.mark.parametrize("name", SOURCES)
def test_source_contract(name: str, data_root: Path):
    build, image_shape, num_classes = SOURCES[name]
    source = build(data_root)
    assert isinstance(source.name, str) and source.name
    source.prepare()
    for split in ("train", "test"):
        arrays = source.load(split)
        assert isinstance(arrays, ImageArrays) and len(arrays) > 0
        assert arrays.image_shape == image_shape
        if num_classes:
            assert arrays.labels.min() >= 0 and arrays.labels.max() < num_classes
        else:
            assert (arrays.labels == -1).all()
    with pytest.raises(ValueError, match=r"unknown split 'validation'.*train, test"):
        source.load("validation")


@pytest.mark.parametrize("name", SOURCES)
def test_datamodule_over_every_source(name: str, data_root: Path):
    build, (c, h, _), num_classes = SOURCES[name]
    dm = ImageDataModule(build(data_root), c, h, num_classes, batch_size=2, val_size=1)
    dm.prepare_data()
    dm.setup()
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        x, y = next(iter(loader))
        assert x.dtype == torch.float32 and x.shape[1:] == (c, h, h) and y.dtype == torch.int64
