"""Small MLP GAN networks for toy "images" such as 2-D points stored as (B, 2, 1, 1): seconds-long
learning tests of every objective through the real GAN module. Any image shape is flattened.

LeakyReLU(0.2) hidden layers of ``hidden`` units; the generator's output is linear (the data
must lie in [0, 1], which the module clamps samples to).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


def _mlp(inputs: int, hidden: int, depth: int, outputs: int) -> nn.Sequential:
    """inputs -> depth x (linear ``hidden``, LeakyReLU) -> linear ``outputs``."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(inputs if i == 0 else hidden, hidden), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers, nn.Linear(hidden if depth else inputs, outputs))


class ToyGenerator(nn.Module):
    """z (B, D) -> (B, *image_shape), linear output."""

    def __init__(
        self, image_shape: Sequence[int], latent_dim: int, hidden: int = 64, depth: int = 2
    ):
        super().__init__()
        self.image_shape = tuple(int(v) for v in image_shape)
        self.net = _mlp(latent_dim, hidden, depth, math.prod(self.image_shape))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(-1, *self.image_shape)  # (B, *image_shape)


class ToyDiscriminator(nn.Module):
    """(B, *image_shape) -> logits (B,)."""

    def __init__(self, image_shape: Sequence[int], hidden: int = 64, depth: int = 2):
        super().__init__()
        self.net = _mlp(math.prod(image_shape), hidden, depth, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1)).squeeze(1)  # (B,)


class ToyAutoencoder(nn.Module):
    """BEGAN's critic: an MLP autoencoder through a ``code_dim`` code; the output is the
    per-sample L1 reconstruction error mean |x - AE(x)| (B,)."""

    def __init__(
        self, image_shape: Sequence[int], code_dim: int = 8, hidden: int = 64, depth: int = 2
    ):
        super().__init__()
        size = math.prod(image_shape)
        self.encoder = _mlp(size, hidden, depth, code_dim)
        self.decoder = _mlp(code_dim, hidden, depth, size)

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x.flatten(1))).view_as(x)  # (B, *image_shape)

    def forward(self, x: Tensor) -> Tensor:
        return torch.abs(x - self.reconstruct(x)).flatten(1).mean(1)  # (B,)
