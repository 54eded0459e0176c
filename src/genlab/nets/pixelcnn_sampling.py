"""Sampling from a PixelCNN, naive and cached; both draw exactly the same images from the same
uniforms.

Both go through the pixels in raster order and the channels in order (R -> G -> B) and draw
each pixel channel by inverse CDF from a pre-drawn uniform ``u[:, c, i, j]``
(``output.sample(params, u)``, see genlab.objectives.autoregressive). They differ only in how
they get the parameters:

- ``naive_sample``: one full forward pass over the whole image per pixel channel, H * W * C
  passes.
- ``cached_sample`` (in the spirit of Ramachandran et al. 2017, "Fast generation for
  convolutional autoregressive models"): the network's cache keeps every layer's activations of
  the pixels already generated, and each new pixel computes only the activations at its own
  position, each from one kernel window of the layer below (the gated net's vertical stack,
  which depends on earlier rows only, once per row). The work per pixel is that of one position,
  not one image.

A network used by ``cached_sample`` provides ``sampling_cache(y, batch)`` returning an object
with ``begin_row(i)``, ``set_pixel(i, j, value (B, C))`` and ``pixel_params(i, j) -> (B, C, P)``
(see MaskedCache and GatedCache in genlab.nets.pixelcnn).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


@torch.no_grad()
def naive_sample(net: nn.Module, output: Any, u: Tensor, y: Tensor | None = None) -> Tensor:
    """Images (B, C, H, W) in [0, 1] from uniforms u (B, C, H, W): H * W * C forward passes."""
    x = torch.zeros_like(u)
    _, channels, height, width = u.shape
    for i in range(height):
        for j in range(width):
            for c in range(channels):
                params = net(x, y)[:, c, :, i, j]  # (B, P)
                x[:, c, i, j] = output.sample(params, u[:, c, i, j])
    return x


@torch.no_grad()
def cached_sample(net: nn.Module, output: Any, u: Tensor, y: Tensor | None = None) -> Tensor:
    """Images (B, C, H, W) in [0, 1] from uniforms u (B, C, H, W), computing each layer's
    activations once per position from the activations cached for earlier pixels."""
    x = torch.zeros_like(u)
    _, channels, height, width = u.shape
    cache = net.sampling_cache(y, len(u))
    for i in range(height):
        cache.begin_row(i)
        for j in range(width):
            for c in range(channels):
                params = cache.pixel_params(i, j)[:, c]  # (B, P)
                x[:, c, i, j] = output.sample(params, u[:, c, i, j])
                cache.set_pixel(i, j, x[:, :, i, j])
    return x
