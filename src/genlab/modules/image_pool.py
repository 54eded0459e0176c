"""A pool of past fakes for the discriminator updates (Shrivastava et al. 2017; CycleGAN keeps
the last 50 per domain), checkpointed and seeded so that a resumed run draws what the
uninterrupted run drew.

``query(fakes)`` goes through the batch in order: while the pool is not full each fake is
stored and returned; once full, each fake is, with probability 1/2, swapped for a stored fake
chosen uniformly (the stored one is returned, the new one takes its slot), else returned
itself. The random draws of the n-th query come from a generator seeded with (seed, n), never
from the global RNG. Under DDP every process queries with the fakes of all processes (the
global batch, gathered) and the same draws, so the pools stay identical across processes, as
one pool over the global batch would be, and each process takes its own part of the answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

from genlab.data.arrays import derive_seed


def gather_batches(x: Tensor) -> tuple[Tensor, int]:
    """(every process's ``x`` (B, ...) concatenated in rank order (W B, ...), this process's
    rank); (x, 0) outside a distributed run. Every process must pass the same shape."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x, 0
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts), dist.get_rank()


class ImagePool(nn.Module):
    """Up to ``size`` past fakes of shape ``image_shape`` (C, H, W); ``size=0``: no pool.

    Buffers (checkpointed): ``images`` (size, C, H, W), ``count`` (fakes stored so far, at most
    size), ``queries`` (calls so far) and ``seed``.
    """

    def __init__(self, size: int, image_shape: Sequence[int], seed: int = 0):
        super().__init__()
        if size < 0:
            raise ValueError(f"model.pool_size={size} must be >= 0 (0: no pool)")
        self.size = size
        self.register_buffer("images", torch.zeros(size, *image_shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self.register_buffer("queries", torch.zeros((), dtype=torch.long))
        self.register_buffer("seed", torch.tensor(seed, dtype=torch.long))

    @torch.no_grad()
    def query(self, fakes: Tensor) -> Tensor:
        """Fakes (B, C, H, W) -> the batch the discriminator sees (B, C, H, W), detached."""
        fakes = fakes.detach()
        if self.size == 0:
            return fakes
        everyone, rank = gather_batches(fakes)  # (W B, C, H, W)
        stream = f"image_pool/{int(self.queries)}"
        generator = torch.Generator().manual_seed(derive_seed(int(self.seed), stream))
        swap = torch.rand(len(everyone), generator=generator) < 0.5  # (W B,)
        slots = torch.randint(self.size, (len(everyone),), generator=generator).tolist()
        out = everyone.clone()
        count = int(self.count)
        for i, fake in enumerate(everyone):
            if count < self.size:
                self.images[count] = fake
                count += 1
            elif swap[i]:
                out[i] = self.images[slots[i]]
                self.images[slots[i]] = fake
        self.count.fill_(count)
        self.queries += 1
        batch = len(fakes)
        return out[rank * batch : (rank + 1) * batch]
