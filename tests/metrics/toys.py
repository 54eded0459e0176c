"""Small deterministic stand-ins for evaluation tests: a source of random gray images, a fixed
random-projection feature extractor and a 'model' that replays given images."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genlab.data import ImageArrays, ImageDataModule
from genlab.metrics.evaluate import EvalSettings
from genlab.metrics.quality import QualitySettings

SIZE = 8  # images are (1, SIZE, SIZE)


class GraySource:
    """Random gray 8x8 images (far from binary), labels i % 4."""

    name = "gray"

    def __init__(self, n_train: int = 140, n_test: int = 60, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.arrays = {
            split: ImageArrays(
                torch.randint(0, 256, (n, 1, SIZE, SIZE), dtype=torch.uint8, generator=generator),
                torch.arange(n) % 4,
            )
            for split, n in (("train", n_train), ("test", n_test))
        }

    def prepare(self) -> None:
        pass

    def load(self, split: str) -> ImageArrays:
        return self.arrays[split]


def datamodule(binarize: bool = True, **kwargs: object) -> ImageDataModule:
    """An ImageDataModule over GraySource (20 images held out for val), set up."""
    config = {"channels": 1, "image_size": SIZE, "num_classes": 4, "batch_size": 16}
    dm = ImageDataModule(GraySource(), **{**config, "val_size": 20, "binarize": binarize, **kwargs})
    dm.prepare_data()
    dm.setup("fit")
    return dm


class ProjectionExtractor:
    """Features and logits: fixed random projections of the pixels, (N, 16) and (N, 5)."""

    key = "projection"

    def __init__(self, seed: int = 0):
        self.seed = seed

    def _project(self, x: Tensor, dim: int, scale: float) -> Tensor:
        x = x.flatten(1).float()  # (N, C * H * W)
        generator = torch.Generator().manual_seed(self.seed + dim)
        return x @ (torch.randn(x.shape[1], dim, generator=generator) * scale)

    def features(self, x: Tensor) -> Tensor:
        return self._project(x, 16, 1.0)  # (N, 16)

    def logits(self, x: Tensor) -> Tensor:
        return self._project(x, 5, 0.5)  # (N, 5)


def projection_extractor(**kwargs: object) -> ProjectionExtractor:
    """A cheap stand-in for the domain evaluator in run configs:
    ``eval.extractor._target_=tests.metrics.toys.projection_extractor``."""
    return ProjectionExtractor()


class Replay(nn.Module):
    """A 'model' whose samples are the given uint8 images (N, C, H, W), in order."""

    num_classes = 0

    def __init__(self, images: Tensor):
        super().__init__()
        self.images = images
        self.image_shape = tuple(images.shape[1:])
        self.anchor = nn.Parameter(torch.zeros(()))  # gives the model a device
        self.cursor = 0

    def sample(self, num_samples: int, y: Tensor | None = None) -> Tensor:
        images = self.images[self.cursor : self.cursor + num_samples]
        self.cursor += num_samples
        return images.float() / 255  # (n, C, H, W)


def settings(num_samples: int = 60, batch_size: int = 25, **kwargs: object) -> EvalSettings:
    """Small evaluation settings: KID on 5 subsets, IS on 3 splits."""
    quality = QualitySettings(kid_subsets=5, kid_subset_size=30, is_splits=3, nearest_k=3)
    values = {"memorization_samples": 40, "memorization_grid_rows": 6, **kwargs}
    return EvalSettings(num_samples=num_samples, batch_size=batch_size, quality=quality, **values)
