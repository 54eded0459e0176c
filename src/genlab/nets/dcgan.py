"""DCGAN networks (Radford et al. 2016) for 28, 32 and 64 px images with 1 or 3 channels.

G: z (B, D) -> fractionally-strided 4x4/2 convolutions with BatchNorm and ReLU, tanh output
rescaled to the data range [0, 1]. D: strided 4x4/2 convolutions with LeakyReLU(0.2) and
BatchNorm (none on the first layer), a final convolution to one logit per image (B,).
The smallest feature map is 4x4 (7x7 for 28 px); each further layer doubles or halves it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

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


class DCGANGenerator(nn.Module):
    """z (B, D) -> (B, C, H, W) in [0, 1]; ``base_channels`` in the last hidden layer."""

    supported_image_sizes = GAN_IMAGE_SIZES
    supported_channels = GAN_CHANNELS

    def __init__(self, image_shape: Sequence[int], latent_dim: int, base_channels: int = 64):
        super().__init__()
        channels, height, _ = check_gan_image_shape("DCGANGenerator", image_shape)
        base, num_up = _ladder(height)
        width = base_channels * 2 ** (num_up - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, width, base, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        ]
        for _ in range(num_up - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
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
        width = base_channels
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        for _ in range(num_down - 1):
            layers += [
                nn.Conv2d(width, width * 2, 4, 2, 1, bias=not batch_norm),
                maybe_batch_norm(width * 2, batch_norm, dims=2),
                nn.LeakyReLU(0.2),
            ]
            width *= 2
        layers.append(nn.Conv2d(width, 1, base, 1, 0))
        self.net = nn.Sequential(*layers)
        init_normal_(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(2 * x - 1).flatten()  # (B,), D sees the DCGAN range [-1, 1]
