"""Unpaired two-domain data (CycleGAN): a source of domain A and domain B images, and the
DataModule that batches them.

A training batch is ``(a, b)``: float32 (B, C, S, S) images in [0, 1] of each domain, S the
crop size. The two domains are drawn independently: an epoch has max(N_A, N_B) / B batches,
each domain in its own seeded permutation (repeated to cover the larger domain), so neither
order depends on the other. Each training image is randomly cropped from the load size to S
and flipped left-right with probability 1/2; the draws come from the batch's own seed, so a
resumed run sees the very batches, crops and flips of the uninterrupted run
(``genlab.data.order``). Test images are centre-cropped.

A source has a ``name``, ``prepare()``, ``load_domain(split, domain)`` -> uint8 (N, C, L, L) at
the load size L, and ``load(split)`` -> ``ImageArrays`` of both domains centre-cropped to S
with labels 0 (A) and 1 (B): the labelled view the evaluation harness (domain evaluator,
reference statistics) reads.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np
import torch
from lightning import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from genlab.data.arrays import SPLITS, ImageArrays, check_split, derive_seed
from genlab.data.order import EpochBatches, SeededBatch

DOMAINS = ("A", "B")


class UnpairedSource(Protocol):
    """What UnpairedDataModule needs from a two-domain data set."""

    name: str

    def prepare(self) -> None: ...

    def load_domain(self, split: str, domain: str) -> Tensor: ...

    def load(self, split: str) -> ImageArrays: ...


def check_domain(dataset: str, domain: str) -> None:
    """Raise a ValueError unless ``domain`` is A or B."""
    if domain not in DOMAINS:
        raise ValueError(f"{dataset}: unknown domain {domain!r}; allowed: {', '.join(DOMAINS)}")


def centre_crop(images: Tensor, size: int) -> Tensor:
    """The central size x size window of (N, C, L, L) images (L >= size)."""
    top = (images.shape[-2] - size) // 2
    left = (images.shape[-1] - size) // 2
    return images[..., top : top + size, left : left + size]


def labelled_domains(domain_a: Tensor, domain_b: Tensor, crop_size: int) -> ImageArrays:
    """Both domains' uint8 (N, C, L, L) images centre-cropped to crop_size, A labelled 0 and B 1."""
    images = torch.cat([centre_crop(domain_a, crop_size), centre_crop(domain_b, crop_size)])
    labels = torch.cat(
        [
            torch.zeros(len(domain_a), dtype=torch.int64),
            torch.ones(len(domain_b), dtype=torch.int64),
        ]
    )
    return ImageArrays(images.contiguous(), labels)


def crop_and_flip(images: np.ndarray, size: int, flip: bool, seed: int) -> np.ndarray:
    """uint8 (B, C, L, L) -> float32 (B, C, size, size) in [0, 1]: a random size x size window
    of each image (uniform over the L - size + 1 positions per axis), mirrored left-right with
    probability 1/2 when ``flip``; draws from a generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    n, span = images.shape[0], images.shape[-1] - size + 1
    tops = torch.randint(span, (n,), generator=generator).tolist()
    lefts = torch.randint(span, (n,), generator=generator).tolist()
    mirror = (torch.rand(n, generator=generator) < 0.5).tolist()
    out = np.empty((n, images.shape[1], size, size), dtype=np.float32)
    for i in range(n):
        window = images[i, :, tops[i] : tops[i] + size, lefts[i] : lefts[i] + size]
        out[i] = window[..., ::-1] if flip and mirror[i] else window
    return np.divide(out, np.float32(255), out=out)


class UnpairedIndices(NamedTuple):
    """One batch: positions in domain A and in domain B (the same number)."""

    a: list[int]
    b: list[int]


def covering_order(n: int, length: int, generator: torch.Generator) -> list[int]:
    """``length`` positions in range(n): fresh permutations of range(n), one after another."""
    order: list[int] = []
    while len(order) < length:
        order += torch.randperm(n, generator=generator).tolist()
    return order[:length]


class UnpairedEpochBatches(EpochBatches):
    """Batches of UnpairedIndices for an epoch of max(num_a, num_b) pairs: each domain in its
    own (seed, epoch, domain)-seeded order. Resume, sharding over DDP ranks and per-batch seeds
    are those of ``EpochBatches`` (whose ``SeededBatch.indices`` are UnpairedIndices here)."""

    def __init__(
        self,
        num_a: int,
        num_b: int,
        batch_size: int,
        drop_last: bool,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ):
        super().__init__(max(num_a, num_b), batch_size, drop_last, seed, rank, world_size)
        self.sizes = {"A": num_a, "B": num_b}

    def _all_batches(self, epoch: int) -> list[UnpairedIndices]:
        orders = {}
        for domain, n in self.sizes.items():
            stream = derive_seed(self.seed, f"train_order/{epoch}/{domain}")
            orders[domain] = covering_order(
                n, self.num_items, torch.Generator().manual_seed(stream)
            )
        size = self.batch_size
        batches = [
            UnpairedIndices(orders["A"][i : i + size], orders["B"][i : i + size])
            for i in range(0, self.num_items, size)
        ]
        if self.drop_last and batches and len(batches[-1].a) < size:
            batches.pop()
        return batches


class UnpairedBatches(Dataset):
    """A map-style dataset whose items are batches: ``dataset[SeededBatch(UnpairedIndices,
    seed)]`` -> (a, b), each float32 (B, C, S, S), cropped and flipped with the batch's seed."""

    def __init__(self, domain_a: Tensor, domain_b: Tensor, crop_size: int, flip: bool):
        self.domains = (domain_a.numpy(), domain_b.numpy())  # uint8 (N, C, L, L) each
        self.crop_size = crop_size
        self.flip = flip

    def __len__(self) -> int:
        return max(len(d) for d in self.domains)

    def __getitem__(self, batch: SeededBatch) -> tuple[Tensor, Tensor]:
        indices: UnpairedIndices = batch.indices
        out = []
        for domain, images, positions in zip(DOMAINS, self.domains, indices, strict=True):
            seed = derive_seed(batch.seed, f"augment/{domain}")
            out.append(
                torch.from_numpy(
                    crop_and_flip(images[np.asarray(positions)], self.crop_size, self.flip, seed)
                )
            )
        return out[0], out[1]


def _require(ok: bool, key: str, value: object, allowed: str) -> None:
    if not ok:
        raise ValueError(f"data.{key}={value!r} is invalid: {allowed}")


class UnpairedDataModule(LightningDataModule):
    """Training batches ``(a, b)`` of the source's train split (random crops from the load size,
    flips), and the fixed, centre-cropped test split of each domain for pictures and metrics.

    ``image_size`` is the crop size S, ``load_size`` the size the source resizes to (the
    reference trains 256 px crops of 286 px images). There is no validation split.
    """

    batch_layout = "unpaired"  # (a, b) batches of two domains, for models that declare it

    def __init__(
        self,
        source: UnpairedSource,
        channels: int,
        image_size: int,
        load_size: int | None = None,
        num_classes: int = 2,
        batch_size: int = 1,
        eval_batch_size: int | None = None,
        flip: bool = True,
        num_workers: int = 0,
        drop_last: bool = True,
        order_seed: int | None = None,
    ):
        super().__init__()
        _require(
            callable(getattr(source, "load_domain", None)),
            "source",
            source,
            "a two-domain source (e.g. _target_: genlab.data.unpaired_sources.UnpairedFolder)",
        )
        _require(channels in (1, 3), "channels", channels, "must be 1 (gray) or 3 (RGB)")
        _require(image_size >= 1, "image_size", image_size, "must be >= 1")
        load_size = image_size if load_size is None else load_size
        _require(
            load_size >= image_size,
            "load_size",
            load_size,
            f"must be >= data.image_size={image_size} (the crop is taken from the loaded image)",
        )
        _require(
            num_classes == len(DOMAINS),
            "num_classes",
            num_classes,
            "must be 2: the labels of unpaired data are its domains, A (0) and B (1)",
        )
        _require(batch_size >= 1, "batch_size", batch_size, "must be >= 1")
        _require(
            eval_batch_size is None or eval_batch_size >= 1,
            "eval_batch_size",
            eval_batch_size,
            "must be >= 1, or null to use data.batch_size",
        )
        _require(num_workers >= 0, "num_workers", num_workers, "must be >= 0")
        self.source = source
        self._image_shape = (channels, image_size, image_size)
        self.load_size = load_size
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.flip = flip
        self.num_workers = num_workers
        self.drop_last = drop_last
        # as ImageDataModule: the run's seed (genlab-train seeds first), kept across a resume
        self.order_seed = torch.initial_seed() if order_seed is None else order_seed
        self._resume_at: tuple[int, int] | None = None
        self._domains: dict[tuple[str, str], Tensor] = {}

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, S, S) of one (cropped) image, from the config."""
        return self._image_shape

    @property
    def num_classes(self) -> int:
        """The domain labels of ``source.load``: 0 (A) and 1 (B)."""
        return len(DOMAINS)

    def prepare_data(self) -> None:
        self.source.prepare()

    def setup(self, stage: str | None = None) -> None:
        """Load both domains of both splits once and check them against the config."""
        if self._domains:
            return
        domains = {
            (split, domain): self._checked(self.source.load_domain(split, domain), split, domain)
            for split in SPLITS
            for domain in DOMAINS
        }
        pairs = max(len(domains["train", d]) for d in DOMAINS)  # the epoch's length
        if self.drop_last and self.batch_size > pairs:
            raise ValueError(
                f"data.batch_size={self.batch_size} is larger than an epoch of "
                f"{self.source.name} ({pairs} pairs: the larger domain's training images); "
                f"set data.batch_size to at most {pairs}"
            )
        self._domains = domains

    def domain(self, split: str, domain: str) -> Tensor:
        """uint8 (N, C, L, L) images of one domain and split, at the load size."""
        check_split(self.source.name, split)
        check_domain(self.source.name, domain)
        if not self._domains:
            raise RuntimeError("UnpairedDataModule.setup() must run before its data is used")
        return self._domains[split, domain]

    def test_images(self, domain: str) -> Tensor:
        """The test split of one domain, centre-cropped: float32 (N, C, S, S) in [0, 1]."""
        return centre_crop(self.domain("test", domain), self.image_shape[1]).float() / 255

    def sample_batch(self, split: str, n: int) -> tuple[Tensor, Tensor]:
        """The first n centre-cropped images of each domain of a split (all if it has fewer):
        (a, b) float32 (n, C, S, S) in [0, 1], for picture grids."""
        _require(n >= 1, "sample_batch.n", n, "must be >= 1")
        a, b = (centre_crop(self.domain(split, d)[:n], self.image_shape[1]) for d in DOMAINS)
        return a.float() / 255, b.float() / 255

    def resume_at(self, epoch: int, batches: int) -> None:
        """The next train loader starts at ``epoch`` after its first ``batches`` batches
        (called by ``genlab.callbacks.ResumeState``)."""
        self._resume_at = (epoch, batches)

    def train_dataloader(self) -> DataLoader:
        a, b = (self.domain("train", d) for d in DOMAINS)
        dataset = UnpairedBatches(a, b, self.image_shape[1], self.flip)
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        order = UnpairedEpochBatches(
            len(a), len(b), self.batch_size, self.drop_last, self.order_seed, rank, world
        )
        if self._resume_at is not None:
            order.resume(*self._resume_at)
            self._resume_at = None
        generator = torch.Generator().manual_seed(derive_seed(self.order_seed, "loader"))
        return DataLoader(
            dataset,
            batch_size=None,
            sampler=order,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=generator,
        )

    def _checked(self, images: Tensor, split: str, domain: str) -> Tensor:
        """Raise a ValueError naming the fix unless ``images`` fit the config."""
        name = self.source.name
        if len(images) == 0:
            raise ValueError(f"{name}: the {split}{domain} folder has no images")
        found = tuple(images.shape[1:])
        expected = (self.image_shape[0], self.load_size, self.load_size)
        if images.dtype != torch.uint8 or found != expected:
            raise ValueError(
                f"{name}: {split}{domain} images are {images.dtype} (C, H, W) = {found} but the "
                f"config says data.channels={expected[0]}, data.load_size={self.load_size}: "
                "the source must load uint8 images at data.load_size"
            )
        return images
