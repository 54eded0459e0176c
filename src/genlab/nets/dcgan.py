"""DCGAN networks (Radford et al. 2016) for 28, 32 and 64 px images with 1 or 3 channels.

G: z (B, D) -> fractionally-strided 4x4/2 convolutions with BatchNorm and ReLU, tanh output
rescaled to the data range [0, 1]. D: strided 4x4/2 convolutions with LeakyReLU(0.2) and
BatchNorm (none on the first layer), a final convolution to one logit per image (B,).
BEGAN's autoencoder critic pairs the two ladders (``DCGANAutoencoder``).
The smallest feature map is 4x4 (7x7 for 28 px); each further layer doubles or halves it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from genlab.nets.gan_layers import (
    GAN_CHANNELS,
    GAN_IMAGE_SIZES,
    check_gan_image_shape,
    init_normal_,
    maybe_batch_norm,
)


def _ladder(image_size: int) -> tuple[int, int]:
    """(smallest feature-map size, number of stride-2 layers) for an image size."""
    base = 7 if image_size == 28 else 4
    return base, int(math.log2(image_size // base))


def _up_layers(
    in_channels: int, channels: int, base: int, num_up: int, base_channels: int, batch_norm: bool
) -> list[nn.Module]:
    """(B, in_channels, 1, 1) -> (B, channels, H, W) in [-1, 1]: a base x base transposed
    convolution, then 4x4/2 ones with [BN] and ReLU, halving the width, and tanh."""
    width = base_channels * 2 ** (num_up - 1)
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(in_channels, width, base, 1, 0, bias=not batch_norm),
        maybe_batch_norm(width, batch_norm, dims=2),
        nn.ReLU(),
    ]
    for _ in range(num_up - 1):
        layers += [
            nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=not batch_norm),
            maybe_batch_norm(width // 2, batch_norm, dims=2),
            nn.ReLU(),
        ]
        width //= 2
    return [*layers, nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]


def _down_layers(
    channels: int, out_channels: int, base: int, num_down: int, base_channels: int, batch_norm: bool
) -> list[nn.Module]:
    """(B, channels, H, W) in [-1, 1] -> (B, out_channels, 1, 1): 4x4/2 convolutions with
    LeakyReLU(0.2) and [BN] (none on the first), doubling the width, then a base x base one."""
    width = base_channels
    layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
    for _ in range(num_down - 1):
        layers += [
            nn.Conv2d(width, width * 2, 4, 2, 1, bias=not batch_norm),
            maybe_batch_norm(width * 2, batch_norm, dims=2),
            nn.LeakyReLU(0.2),
        ]
        width *= 2
    return [*layers, nn.Conv2d(width, out_channels, base, 1, 0)]


class DCGANGenerator(nn.Module):
    """z (B, D) -> (B, C, H, W) in [0, 1]; ``base_channels`` in the last hidden layer."""

    supported_image_sizes = GAN_IMAGE_SIZES
    supported_channels = GAN_CHANNELS

    def __init__(self, image_shape: Sequence[int], latent_dim: int, base_channels: int = 64):
        super().__init__()
        channels, height, _ = check_gan_image_shape("DCGANGenerator", image_shape)
        base, num_up = _ladder(height)
        self.net = nn.Sequential(
            *_up_layers(latent_dim, channels, base, num_up, base_channels, batch_norm=True)
        )
        init_normal_(self)

    def forward(self, z: Tensor) -> Tensor:
        out = self.net(z[:, :, None, None])  # (B, C, H, W) in [-1, 1]
        return (out + 1) / 2


class DCGANDiscriminator(nn.Module):
    """(B, C, H, W) in [0, 1] -> logits (B,). ``batch_norm=False`` for gradient penalties."""

    supported_image_sizes = GAN_IMAGE_SIZES
    supported_channels = GAN_CHANNELS

    def __init__(
        self, image_shape: Sequence[int], base_channels: int = 64, batch_norm: bool = True
    ):
        super().__init__()
        channels, height, _ = check_gan_image_shape("DCGANDiscriminator", image_shape)
        base, num_down = _ladder(height)
        self.net = nn.Sequential(
            *_down_layers(channels, 1, base, num_down, base_channels, batch_norm)
        )
        init_normal_(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(2 * x - 1).flatten()  # (B,), D sees the DCGAN range [-1, 1]


class DCGANAutoencoder(nn.Module):
    """BEGAN's discriminator on the DCGAN ladders: the discriminator's convolutions encode x to
    a code (B, code_dim), a generator-shaped decoder reconstructs it; the output is the
    per-sample L1 reconstruction error L(x) = mean |x - AE(x)| over pixels and channels, (B,)."""

    supported_image_sizes = GAN_IMAGE_SIZES
    supported_channels = GAN_CHANNELS

    def __init__(
        self,
        image_shape: Sequence[int],
        code_dim: int = 64,
        base_channels: int = 64,
        batch_norm: bool = False,
    ):
        super().__init__()
        channels, height, _ = check_gan_image_shape("DCGANAutoencoder", image_shape)
        base, num_steps = _ladder(height)
        self.encoder = nn.Sequential(
            *_down_layers(channels, code_dim, base, num_steps, base_channels, batch_norm)
        )
        self.decoder = nn.Sequential(
            *_up_layers(code_dim, channels, base, num_steps, base_channels, batch_norm)
        )
        init_normal_(self)

    def reconstruct(self, x: Tensor) -> Tensor:
        code = self.encoder(2 * x - 1)  # (B, code_dim, 1, 1)
        return (self.decoder(code) + 1) / 2  # (B, C, H, W) in [0, 1]

    def forward(self, x: Tensor) -> Tensor:
        return torch.abs(x - self.reconstruct(x)).flatten(1).mean(1)  # (B,)
