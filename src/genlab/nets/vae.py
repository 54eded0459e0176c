"""VAE encoders and decoders: convolutional (28, 32, 64 px) and MLP, optionally label-conditioned.

Encoders map x (B, C, H, W) [and y (B,)] to the Gaussian posterior's (mu, logvar), each (B, D).
Decoders map z (B, D) [and y (B,)] to likelihood parameters (B, P * C, H, W), where P is the
likelihood's number of parameters per pixel value.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _one_hot(y: Tensor | None, num_classes: int, batch: int, ref: Tensor) -> Tensor:
    """(B,) labels -> (B, num_classes) float; (B, 0) when unconditional."""
    if num_classes == 0:
        return ref.new_zeros(batch, 0)
    if y is None:
        raise ValueError("this network is label-conditioned: pass labels y (B,)")
    return F.one_hot(y, num_classes).to(ref.dtype)


def _conv_grid(image_shape: Sequence[int], num_layers: int) -> tuple[int, int]:
    """Spatial size after ``num_layers`` stride-2 halvings; checks it divides evenly."""
    _, h, w = image_shape
    factor = 2**num_layers
    if h % factor or w % factor:
        raise ValueError(
            f"image size {h}x{w} is not divisible by 2^{num_layers}={factor} "
            f"({num_layers} stride-2 layers): use an image size such as 28, 32 or 64, or change "
            "hidden_channels of model.encoder and model.decoder"
        )
    return h // factor, w // factor


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ConvEncoder(nn.Module):
    """Stride-2 4x4 convolutions (each halves H and W), then an MLP head to (mu, logvar)."""

    @staticmethod
    def check_image_shape(
        image_shape: Sequence[int], hidden_channels: Sequence[int] = (32, 64), **_: object
    ) -> None:
        """Raise ValueError unless H and W are divisible by 2^len(hidden_channels)."""
        _conv_grid(image_shape, len(hidden_channels))

    def __init__(
        self,
        image_shape: Sequence[int],
        latent_dim: int,
        hidden_channels: Sequence[int] = (32, 64),
        hidden_dim: int = 256,
        num_classes: int = 0,
    ):
        super().__init__()
        channels = image_shape[0]
        gh, gw = _conv_grid(image_shape, len(hidden_channels))
        convs: list[nn.Module] = []
        for c_in, c_out in zip([channels, *hidden_channels[:-1]], hidden_channels, strict=True):
            convs += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
        self.convs = nn.Sequential(*convs)
        self.num_classes = num_classes
        self.head = _mlp([hidden_channels[-1] * gh * gw + num_classes, hidden_dim, 2 * latent_dim])

    def forward(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = self.convs(x).flatten(1)  # (B, C' * H' * W')
        h = torch.cat([h, _one_hot(y, self.num_classes, x.shape[0], h)], dim=1)
        mu, logvar = self.head(h).chunk(2, dim=1)  # (B, D) each
        return mu, logvar


class ConvDecoder(nn.Module):
    """MLP from z to a (C', H', W') grid, then stride-2 transposed convolutions up to (H, W)."""

    @staticmethod
    def check_image_shape(
        image_shape: Sequence[int], hidden_channels: Sequence[int] = (64, 32), **_: object
    ) -> None:
        """Raise ValueError unless H and W are divisible by 2^len(hidden_channels)."""
        _conv_grid(image_shape, len(hidden_channels))

    def __init__(
        self,
        image_shape: Sequence[int],
        latent_dim: int,
        hidden_channels: Sequence[int] = (64, 32),
        hidden_dim: int = 256,
        num_classes: int = 0,
        params_per_pixel: int = 1,
    ):
        super().__init__()
        channels = image_shape[0]
        self.grid = (hidden_channels[0], *_conv_grid(image_shape, len(hidden_channels)))
        self.num_classes = num_classes
        grid_size = self.grid[0] * self.grid[1] * self.grid[2]
        self.head = nn.Sequential(
            _mlp([latent_dim + num_classes, hidden_dim, grid_size]), nn.ReLU()
        )
        deconvs: list[nn.Module] = []
        outs = [*hidden_channels[1:], channels * params_per_pixel]
        for i, (c_in, c_out) in enumerate(zip(hidden_channels, outs, strict=True)):
            deconvs.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
            if i < len(outs) - 1:
                deconvs.append(nn.ReLU())
        self.deconvs = nn.Sequential(*deconvs)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        h = torch.cat([z, _one_hot(y, self.num_classes, z.shape[0], z)], dim=1)
        h = self.head(h).view(z.shape[0], *self.grid)  # (B, C', H', W')
        return self.deconvs(h)  # (B, P * C, H, W)


class MLPEncoder(nn.Module):
    """Flattened image -> hidden layers -> (mu, logvar)."""

    def __init__(
        self,
        image_shape: Sequence[int],
        latent_dim: int,
        hidden_dims: Sequence[int] = (512, 256),
        num_classes: int = 0,
    ):
        super().__init__()
        num_pixels = image_shape[0] * image_shape[1] * image_shape[2]
        self.num_classes = num_classes
        self.net = _mlp([num_pixels + num_classes, *hidden_dims, 2 * latent_dim])

    def forward(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = x.flatten(1)  # (B, C * H * W)
        h = torch.cat([h, _one_hot(y, self.num_classes, x.shape[0], h)], dim=1)
        mu, logvar = self.net(h).chunk(2, dim=1)  # (B, D) each
        return mu, logvar


class MLPDecoder(nn.Module):
    """z -> hidden layers -> likelihood parameters, reshaped to (B, P * C, H, W)."""

    def __init__(
        self,
        image_shape: Sequence[int],
        latent_dim: int,
        hidden_dims: Sequence[int] = (256, 512),
        num_classes: int = 0,
        params_per_pixel: int = 1,
    ):
        super().__init__()
        c, h, w = image_shape
        self.out_shape = (c * params_per_pixel, h, w)
        self.num_classes = num_classes
        self.net = _mlp([latent_dim + num_classes, *hidden_dims, c * params_per_pixel * h * w])

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        h = torch.cat([z, _one_hot(y, self.num_classes, z.shape[0], z)], dim=1)
        return self.net(h).view(z.shape[0], *self.out_shape)  # (B, P * C, H, W)
