"""The InfoGAN-style networks Lucic et al. 2018 use for every data set (their Table 7).

Images are (B, C, H, W) in [0, 1] with H = W in 28 / 32 / 64 and C in 1 / 3; latents (B, D).
Leaky ReLUs have slope 0.2 (in G too, as in the authors' released code); weights ~ N(0, 0.02).
"""

from __future__ import annotations

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


def _conv_stack(channels: int, batch_norm: bool) -> nn.Sequential:
    """conv 64 4x4/2, lReLU, conv 128 4x4/2, [BN], lReLU: (B, C, H, W) -> (B, 128, H/4, W/4)."""
    return nn.Sequential(
        nn.Conv2d(channels, 64, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1),
        maybe_batch_norm(128, batch_norm, dims=2),
        nn.LeakyReLU(0.2),
    )


class LucicGenerator(nn.Module):
    """z (B, D) -> FC 1024, BN, lReLU, FC 128 * H/4 * W/4, BN, lReLU, deconv 64 4x4/2, BN,
    lReLU, deconv C 4x4/2, sigmoid -> (B, C, H, W) in [0, 1]."""

    supported_image_sizes = GAN_IMAGE_SIZES
    supported_channels = GAN_CHANNELS

    def __init__(self, image_shape: Sequence[int], latent_dim: int):
        super().__init__()
        channels, height, width = check_gan_image_shape("LucicGenerator", image_shape)
        self.grid = (128, height // 4, width // 4)
        self.fc = nn.Sequential(
            nn.Linear(latent_dim, 1024),
            nn.BatchNorm1d(1024),
            nn.LeakyReLU(0.2),
            nn.Linear(1024, 128 * (height // 4) * (width // 4)),
            nn.BatchNorm1d(128 * (height // 4) * (width // 4)),
            nn.LeakyReLU(0.2),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(128, 64, 4, 2, 1),
            nn.BatchNorm2d(64),
            nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(64, channels, 4, 2, 1),
            nn.Sigmoid(),
        )
        init_normal_(self)

    def forward(self, z: Tensor) -> Tensor:
        h = self.fc(z).view(-1, *self.grid)  # (B, 128, H/4, W/4)
        return self.deconv(h)  # (B, C, H, W)


class LucicDiscriminator(nn.Module):
    """(B, C, H, W) -> conv 64 4x4/2, lReLU, conv 128 4x4/2, [BN], lReLU, FC 1024, [BN], lReLU,
    FC 1 -> logits (B,). ``batch_norm=False`` for gradient-penalty objectives."""

    supported_image_sizes = GAN_IMAGE_SIZES
    supported_channels = GAN_CHANNELS

    def __init__(self, image_shape: Sequence[int], batch_norm: bool = True):
        super().__init__()
        channels, height, width = check_gan_image_shape("LucicDiscriminator", image_shape)
        self.features = _conv_stack(channels, batch_norm)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(128 * (height // 4) * (width // 4), 1024),
            maybe_batch_norm(1024, batch_norm, dims=1),
            nn.LeakyReLU(0.2),
            nn.Linear(1024, 1),
        )
        init_normal_(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)).squeeze(1)  # (B,)


class LucicAutoencoder(nn.Module):
    """BEGAN's discriminator: the same conv stack encodes x to a code (B, code_dim), a
    generator-shaped decoder reconstructs it; the output is the per-sample L1 reconstruction
    error L(x) = mean |x - AE(x)| over pixels and channels, (B,)."""

    supported_image_sizes = GAN_IMAGE_SIZES
    supported_channels = GAN_CHANNELS

    def __init__(self, image_shape: Sequence[int], code_dim: int = 64, batch_norm: bool = False):
        super().__init__()
        channels, height, width = check_gan_image_shape("LucicAutoencoder", image_shape)
        self.grid = (128, height // 4, width // 4)
        self.encoder = nn.Sequential(
            _conv_stack(channels, batch_norm),
            nn.Flatten(),
            nn.Linear(128 * (height // 4) * (width // 4), code_dim),
        )
        self.decoder_fc = nn.Sequential(
            nn.Linear(code_dim, 128 * (height // 4) * (width // 4)),
            maybe_batch_norm(128 * (height // 4) * (width // 4), batch_norm, dims=1),
            nn.LeakyReLU(0.2),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(128, 64, 4, 2, 1),
            maybe_batch_norm(64, batch_norm, dims=2),
            nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(64, channels, 4, 2, 1),
            nn.Sigmoid(),
        )
        init_normal_(self)

    def reconstruct(self, x: Tensor) -> Tensor:
        code = self.encoder(x)  # (B, code_dim)
        return self.decoder(self.decoder_fc(code).view(-1, *self.grid))  # (B, C, H, W)

    def forward(self, x: Tensor) -> Tensor:
        return torch.abs(x - self.reconstruct(x)).flatten(1).mean(1)  # (B,)
