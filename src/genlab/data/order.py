"""The order of training batches: a seeded permutation per epoch that a resumed run can re-enter.

``EpochBatches`` yields, for epoch ``e``, the index batches of ``randperm(n)`` drawn from a
generator seeded with ``derive_seed(seed, "train_order/e")``: the order depends on (seed, epoch)
only, never on the global RNG, so a run resumed mid-epoch sees the very batches the
uninterrupted run saw. ``resume(epoch, batches)`` makes the next pass over ``epoch`` skip its
first ``batches`` batches (once). Each batch carries its own noise seed (dynamic binarization
draws from it), so the data do not depend on when a batch is fetched either (prefetching,
worker processes).

Under DDP the sampler shards itself: rank r of W takes batches r, r + W, ... of the epoch's
list (every rank the same number). It subclasses ``DistributedSampler`` only so that Lightning
does not wrap it in another one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch.utils.data import DistributedSampler

from genlab.data.arrays import derive_seed


class SeededBatch(NamedTuple):
    """A batch of dataset indices and the seed of its random draws (binarization)."""

    indices: list[int]
    seed: int


class EpochBatches(DistributedSampler):
    """Index batches of a (seed, epoch)-seeded permutation of ``range(num_items)``."""

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        drop_last: bool,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ):
        # no super().__init__: it asks torch.distributed for the world; only the attributes
        # Lightning and torch read are set here
        self.num_items = num_items
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.seed = seed
        self.rank = rank
        self.num_replicas = world_size
        self.shuffle = True
        self.epoch = 0
        self._skip = (0, 0)  # (epoch, batches) to skip once

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at every epoch start."""
        self.epoch = epoch

    def resume(self, epoch: int, batches: int) -> None:
        """The next pass starts at ``epoch``, after its first ``batches`` batches (this rank's)."""
        self.epoch = epoch
        self._skip = (epoch, batches)

    def _all_batches(self, epoch: int) -> list[list[int]]:
        generator = torch.Generator().manual_seed(derive_seed(self.seed, f"train_order/{epoch}"))
        order = torch.randperm(self.num_items, generator=generator).tolist()
        size = self.batch_size
        batches = [order[i : i + size] for i in range(0, len(order), size)]
        if self.drop_last and batches and len(batches[-1]) < size:
            batches.pop()
        return batches

    def __len__(self) -> int:
        full, rest = divmod(self.num_items, self.batch_size)
        total = full + (rest > 0 and not self.drop_last)
        return total // self.num_replicas

    def __iter__(self) -> Iterator[SeededBatch]:
        epoch = self.epoch
        skip_epoch, skip = self._skip
        self._skip = (0, 0)
        start = skip if skip_epoch == epoch else 0
        mine = self._all_batches(epoch)[self.rank :: self.num_replicas][: len(self)]
        for i in range(start, len(mine)):
            yield SeededBatch(mine[i], derive_seed(self.seed, f"batch/{epoch}/{self.rank}/{i}"))
