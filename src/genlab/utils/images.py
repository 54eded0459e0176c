"""Image grids as uint8 arrays and PNG files (no torchvision needed)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from genlab.utils.io import atomic_write_bytes


class Grid(NamedTuple):
    """A picture to save: ``images`` (N, C, H, W) float in [0, 1], laid out ``nrow`` per row."""

    images: Tensor
    nrow: int


def make_grid(images: Tensor, nrow: int, padding: int = 2, pad_value: float = 0.5) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] -> (rows*(H+p)+p, nrow*(W+p)+p, C) uint8, row-major order.

    Gray images keep one channel; the padding is mid-gray so black and white digits both show.
    """
    images = images.detach().float().cpu().clamp(0, 1)
    n, c, h, w = images.shape
    nrow = max(1, min(nrow, n))
    rows = -(-n // nrow)
    canvas = torch.full(
        (c, rows * (h + padding) + padding, nrow * (w + padding) + padding), pad_value
    )
    for i in range(n):
        top = padding + (i // nrow) * (h + padding)
        left = padding + (i % nrow) * (w + padding)
        canvas[:, top : top + h, left : left + w] = images[i]
    array = (canvas * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()  # (H', W', C)
    return array


def to_pil(grid: np.ndarray) -> Image.Image:
    """(H, W, C) uint8 with C in {1, 3} -> PIL image."""
    return Image.fromarray(grid[:, :, 0] if grid.shape[2] == 1 else grid)


def save_png(path: str | Path, grid: np.ndarray, scale: int = 1) -> Path:
    """Write a (H, W, C) uint8 grid as PNG, atomically; ``scale`` enlarges it (nearest)."""
    image = to_pil(grid)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)
