"""ImageDataModule: any source, held in memory as uint8 and batched by indexing.

Every loader yields ``(x, y)``: x float32 (B, C, H, W) in [0, 1], y int64 (B,) (-1 where
unlabelled). A sampler hands the dataset a whole batch of indices, and one indexing op plus one
float conversion makes the batch: no per-image Python work.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from lightning import LightningDataModule
from torch import Tensor
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    Sampler,
    SequentialSampler,
)

from genlab.data.arrays import SPLITS, ImageArrays, derive_seed, holdout_split
from genlab.data.order import EpochBatches, SeededBatch
from genlab.data.sources import Source

_SPLITS = ("train", "val", "test")


class IndexedBatches(Dataset):
    """A map-style dataset whose items are batches: ``dataset[indices]`` -> (x, y).

    images uint8 (N, C, H, W), labels int64 (N,). With ``binarize`` every call draws a fresh
    Bernoulli sample of each pixel (dynamic binarization) from torch's global RNG.
    """

    def __init__(self, images: Tensor, labels: Tensor, binarize: bool = False):
        # numpy views: numpy runs these small element-wise ops on one thread, where torch would
        # split them across threads and stall whenever another process holds a core
        self.images = images.numpy()
        self.labels = labels.numpy()
        self.binarize = binarize

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, indices: Sequence[int] | Tensor | SeededBatch) -> tuple[Tensor, Tensor]:
        # a SeededBatch (the training order) brings the seed of its binarization noise
        generator = None
        if isinstance(indices, SeededBatch):
            generator = torch.Generator().manual_seed(indices.seed)
            indices = indices.indices
        index = np.asarray(indices)
        x = np.divide(self.images[index], np.float32(255), dtype=np.float32)  # (B, C, H, W)
        if self.binarize:
            noise = torch.rand(x.shape, generator=generator).numpy()  # (B, C, H, W)
            x = (noise < x).astype(np.float32)  # (B, C, H, W) in {0, 1}
        return torch.from_numpy(x), torch.from_numpy(self.labels[index])


def binarize_fixed(images: Tensor, seed: int) -> Tensor:
    """One seeded Bernoulli draw per pixel: uint8 (N, C, H, W) -> uint8 0/255 (N, C, H, W)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.bernoulli(images.float().div_(255), generator=generator).mul_(255).to(torch.uint8)


def _require(ok: bool, key: str, value: object, allowed: str) -> None:
    if not ok:
        raise ValueError(f"data.{key}={value!r} is invalid: {allowed}")


class ImageDataModule(LightningDataModule):
    """Train / val / test loaders over a source's images.

    ``val_size`` images are held out from the source's train split (fixed by ``split_seed``);
    the test split is the source's own. With ``binarize`` train batches are binarized afresh
    every time, val and test once with a seed derived from ``split_seed``.
    """

    def __init__(
        self,
        source: Source,
        channels: int,
        image_size: int,
        num_classes: int,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        val_size: int = 5000,
        split_seed: int = 0,
        binarize: bool = False,
        num_workers: int = 0,
        drop_last: bool = True,
        order_seed: int | None = None,
    ):
        super().__init__()
        _require(
            callable(getattr(source, "load", None)) and callable(getattr(source, "prepare", None)),
            "source",
            source,
            "a data source object (a config with _target_: genlab.data.sources.<Name>)",
        )
        _require(channels >= 1, "channels", channels, "must be >= 1 (1 gray, 3 RGB)")
        _require(image_size >= 1, "image_size", image_size, "must be >= 1")
        _require(num_classes >= 0, "num_classes", num_classes, "must be >= 0 (0: unlabelled)")
        _require(batch_size >= 1, "batch_size", batch_size, "must be >= 1")
        _require(
            eval_batch_size is None or eval_batch_size >= 1,
            "eval_batch_size",
            eval_batch_size,
            "must be >= 1, or null to use data.batch_size",
        )
        _require(val_size >= 0, "val_size", val_size, "must be >= 0")
        _require(num_workers >= 0, "num_workers", num_workers, "must be >= 0")
        self.source = source
        self._image_shape = (channels, image_size, image_size)
        self._num_classes = num_classes
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.val_size = val_size
        self.split_seed = split_seed
        self.binarize = binarize
        self.num_workers = num_workers
        self.drop_last = drop_last
        # the training order's seed: by default the global seed set before this is built
        # (genlab-train seeds first), so it follows the run's seed and survives a resume
        self.order_seed = torch.initial_seed() if order_seed is None else order_seed
        self._resume_at: tuple[int, int] | None = None  # (epoch, batches done), see resume_at
        self._splits: dict[str, ImageArrays] = {}
        self._eval_images: dict[str, Tensor] = {}  # see eval_images: binarized once if asked

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image, from the config."""
        return self._image_shape

    @property
    def num_classes(self) -> int:
        """Number of classes (0 for unlabelled data)."""
        return self._num_classes

    @property
    def train_set(self) -> ImageArrays:
        return self._split("train")

    @property
    def val_set(self) -> ImageArrays:
        return self._split("val")

    @property
    def test_set(self) -> ImageArrays:
        return self._split("test")

    def prepare_data(self) -> None:
        self.source.prepare()

    def setup(self, stage: str | None = None) -> None:
        """Load both splits once, check them against the config and hold out val."""
        if self._splits:
            return
        train, test = (self._checked(self.source.load(split), split) for split in SPLITS)
        n, name = len(train), self.source.name
        most = n - (self.batch_size if self.drop_last else 1)  # most images val may take
        if most < 0:
            raise ValueError(
                f"data.batch_size={self.batch_size} is larger than the {n} training images of "
                f"{name}; set data.batch_size to at most {n}"
            )
        if self.val_size > most:
            raise ValueError(
                f"data.val_size={self.val_size} is too large: {name} has {n} training images "
                f"and training needs at least {n - most} (data.batch_size={self.batch_size}); "
                f"set data.val_size to at most {most}"
            )
        kept, held = holdout_split(len(train), self.val_size, self.split_seed)
        self._splits = {"train": train.subset(kept), "val": train.subset(held), "test": test}
        self._eval_images = {
            split: self._fixed_binarization(split, self._splits[split].images)
            for split in ("val", "test")
        }

    def resume_at(self, epoch: int, batches: int) -> None:
        """The next train loader starts at ``epoch`` after its first ``batches`` batches
        (called by ``genlab.callbacks.ResumeState`` when a checkpoint is restored)."""
        self._resume_at = (epoch, batches)

    def train_dataloader(self) -> DataLoader:
        """Batches in a (order_seed, epoch)-seeded order, sharded over DDP ranks, re-entered
        mid-epoch on resume (``genlab.data.order.EpochBatches``)."""
        train = self._split("train")
        dataset = IndexedBatches(train.images, train.labels, binarize=self.binarize)
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        order = EpochBatches(
            len(dataset), self.batch_size, self.drop_last, self.order_seed, rank, world
        )
        if self._resume_at is not None:
            order.resume(*self._resume_at)
            self._resume_at = None
        # the loader's own generator: creating its iterator draws a worker base seed, which
        # must not come from (and shift) the global RNG
        generator = torch.Generator().manual_seed(derive_seed(self.order_seed, "loader"))
        return DataLoader(
            dataset,
            batch_size=None,
            sampler=order,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=generator,
        )

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def sample_batch(self, split: str, n: int) -> tuple[Tensor, Tensor]:
        """The first n images of a split (all of them if it has fewer) as (x, y): x float32
        (n, C, H, W) in [0, 1], binarized with a fixed seed when ``binarize`` is set."""
        _require(n >= 1, "sample_batch.n", n, "must be >= 1")
        images = self.eval_images(split)[:n]  # (n, C, H, W) uint8
        return images.float().div_(255), self._split(split).labels[:n]

    def eval_images(self, split: str) -> Tensor:
        """A split's images as models are scored against them, uint8 (N, C, H, W): with
        ``binarize``, the split's one seeded binarization (for val and test the images their
        loaders yield; for train a fixed draw standing for the fresh ones training makes)."""
        if split not in self._eval_images:  # train: binarized on first use
            self._eval_images[split] = self._fixed_binarization(split, self._split(split).images)
        return self._eval_images[split]

    def eval_settings(self, split: str) -> dict[str, int | bool]:
        """Every setting of this module that changes the pixels of ``eval_images(split)``
        (the source's own settings aside): for the keys of cached statistics."""
        self._split(split)  # a known split
        settings: dict[str, int | bool] = {}
        if split != "test":  # train and val: which images, from the hold-out
            settings.update(val_size=self.val_size, split_seed=self.split_seed)
        if self.binarize:  # seeded by (split_seed, split)
            settings.update(binarize=True, split_seed=self.split_seed)
        return settings

    def _split(self, split: str) -> ImageArrays:
        if split not in _SPLITS:
            raise ValueError(f"unknown split {split!r}; allowed: {', '.join(_SPLITS)}")
        if not self._splits:
            raise RuntimeError("ImageDataModule.setup() must run before its data is used")
        return self._splits[split]

    def _fixed_binarization(self, split: str, images: Tensor) -> Tensor:
        if not self.binarize:
            return images
        return binarize_fixed(images, derive_seed(self.split_seed, f"binarize/{split}"))

    def _eval_loader(self, split: str) -> DataLoader:
        dataset = IndexedBatches(self._eval_images[split], self._split(split).labels)
        return self._loader(dataset, SequentialSampler(dataset), self.eval_batch_size, False)

    def _loader(
        self, dataset: IndexedBatches, order: Sampler, batch_size: int, drop: bool
    ) -> DataLoader:
        # batch_size=None: the sampler yields whole index batches and the dataset builds them
        return DataLoader(
            dataset,
            batch_size=None,
            sampler=BatchSampler(order, batch_size, drop_last=drop),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def _checked(self, arrays: ImageArrays, split: str) -> ImageArrays:
        """Raise a ValueError naming the fix if ``arrays`` does not match the config."""
        name = self.source.name
        if len(arrays) == 0:
            raise ValueError(f"{name}: the {split} split has no images")
        found = arrays.image_shape
        if found != self.image_shape:
            c, h, w = found
            fixes = [f"data.channels={c}"] if c != self.image_shape[0] else []
            if (h, w) != self.image_shape[1:]:
                fixes.append(f"data.image_size={h}" if h == w else "a source with square images")
            raise ValueError(
                f"{name}: {split} images are (C, H, W) = {found} but the config says "
                f"data.channels={self.image_shape[0]}, data.image_size={self.image_shape[1]}; "
                f"use {' and '.join(fixes)}"
            )
        if self.num_classes > 0:
            low, high = int(arrays.labels.min()), int(arrays.labels.max())
            if low < 0:
                raise ValueError(
                    f"{name}: {split} images are unlabelled but data.num_classes="
                    f"{self.num_classes}; set data.num_classes=0"
                )
            if high >= self.num_classes:
                raise ValueError(
                    f"{name}: {split} labels go up to {high} but data.num_classes="
                    f"{self.num_classes}; set data.num_classes={high + 1}"
                )
        return arrays
