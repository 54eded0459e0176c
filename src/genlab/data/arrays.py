"""The in-memory form of every data set, and the seeded helpers that all sources share."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch import Tensor

SPLITS = ("train", "test")


@dataclass(frozen=True, eq=False)
class ImageArrays:
    """A whole split in memory.

    images: uint8 (N, C, H, W); labels: int64 (N,), -1 where unlabelled; factors: float32 (N, F)
    latent factors or None, named by ``factor_names`` (F names).
    """

    images: Tensor
    labels: Tensor
    factors: Tensor | None = None
    factor_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "factor_names", tuple(self.factor_names))
        images, labels, factors = self.images, self.labels, self.factors
        if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"ImageArrays.images must be a uint8 (N, C, H, W) tensor, {_desc(images)}"
            )
        n = images.shape[0]
        if not isinstance(labels, Tensor) or labels.dtype != torch.int64 or labels.shape != (n,):
            raise ValueError(f"ImageArrays.labels must be an int64 ({n},) tensor, {_desc(labels)}")
        if factors is None:
            if self.factor_names:
                raise ValueError(
                    f"ImageArrays.factor_names={self.factor_names} given without factors"
                )
            return
        if (
            not isinstance(factors, Tensor)
            or factors.dtype != torch.float32
            or factors.dim() != 2
            or factors.shape[0] != n
        ):
            raise ValueError(
                f"ImageArrays.factors must be a float32 ({n}, F) tensor, {_desc(factors)}"
            )
        if len(self.factor_names) != factors.shape[1]:
            raise ValueError(
                f"ImageArrays.factor_names has {len(self.factor_names)} names for "
                f"{factors.shape[1]} factors: {self.factor_names}"
            )

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.images.shape[1:]
        return c, h, w

    def subset(self, index: Tensor) -> ImageArrays:
        """The images selected by ``index`` (int64 (K,) positions or a bool (N,) mask)."""
        factors = None if self.factors is None else self.factors[index]
        return ImageArrays(self.images[index], self.labels[index], factors, self.factor_names)


def _desc(value: object) -> str:
    if isinstance(value, Tensor):
        return f"got {value.dtype} {tuple(value.shape)}"
    return f"got {type(value).__name__}"


def check_split(dataset: str, split: str) -> None:
    """Raise a ValueError unless ``split`` is one of SPLITS."""
    if split not in SPLITS:
        raise ValueError(f"{dataset}: unknown split {split!r}; allowed: {', '.join(SPLITS)}")


def derive_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for the named random ``stream`` of ``seed``, stable across runs/platforms."""
    digest = hashlib.sha256(f"{seed}/{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def holdout_split(n: int, holdout: int, seed: int) -> tuple[Tensor, Tensor]:
    """Split range(n) at random (fixed by ``seed``) into (kept, held-out) sorted int64 indices,
    with ``holdout`` indices held out."""
    if not 0 <= holdout <= n:
        raise ValueError(f"cannot hold out {holdout} of {n} items")
    generator = torch.Generator().manual_seed(derive_seed(seed, "holdout"))
    perm = torch.randperm(n, generator=generator)
    return perm[holdout:].sort().values, perm[:holdout].sort().values
