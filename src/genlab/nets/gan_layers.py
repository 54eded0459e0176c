"""Pieces shared by the GAN networks: input checks and the N(0, 0.02) initialisation."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

GAN_IMAGE_SIZES = (28, 32, 64)
GAN_CHANNELS = (1, 3)


def check_gan_image_shape(net: str, image_shape: Sequence[int]) -> tuple[int, int, int]:
    """(C, H, W) if the GAN nets can take it: square, H in 28 / 32 / 64, C in 1 / 3."""
    channels, height, width = (int(v) for v in image_shape)
    if height != width or height not in GAN_IMAGE_SIZES:
        raise ValueError(
            f"{net} takes square images of size {GAN_IMAGE_SIZES}, got {height}x{width}: "
            "set data.image_size to one of these"
        )
    if channels not in GAN_CHANNELS:
        raise ValueError(f"{net} takes {GAN_CHANNELS} channels, got data.channels={channels}")
    return channels, height, width


def init_normal_(module: nn.Module, std: float = 0.02) -> nn.Module:
    """Radford et al.'s initialisation: conv / linear weights ~ N(0, std), batch-norm scales
    ~ N(1, std), biases 0. Returns the module."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, std)
            nn.init.zeros_(layer.bias)
    return module


def maybe_batch_norm(features: int, enabled: bool, dims: int) -> nn.Module:
    """BatchNorm{1,2}d(features) when enabled, else the identity."""
    if not enabled:
        return nn.Identity()
    return nn.BatchNorm2d(features) if dims == 2 else nn.BatchNorm1d(features)
