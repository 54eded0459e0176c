"""Procedural dSprites-like shapes: white squares, ellipses and triangles on black.

Every image is drawn from five independent latent factors (``FACTOR_NAMES``):

- shape: 0 square, 1 ellipse, 2 triangle (also the label);
- scale in [0.5, 1]: circumradius as a fraction of ``max_radius`` (default ``MAX_RADIUS``);
- rotation in [0, 2 pi) radians, counter-clockwise on screen;
- pos_x, pos_y in [0, 1]: centre from left to right / top to bottom, over the range in which
  the largest shape stays inside the frame with a black border of at least one pixel.

Rasterisation is analytic and vectorised: each pixel gets the signed distance from its centre
to the shape's outline, and coverage clamp(0.5 - distance in pixels, 0, 1), which anti-aliases
the edges without supersampling.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from genlab.data.arrays import ImageArrays, check_split, derive_seed

FACTOR_NAMES = ("shape", "scale", "rotation", "pos_x", "pos_y")
SHAPE_NAMES = ("square", "ellipse", "triangle")
IMAGE_SIZES = (32, 64)
SCALE_RANGE = (0.5, 1.0)
MAX_RADIUS = 0.4  # circumradius of the largest shape, in half frame widths
ELLIPSE_ASPECT = 0.5  # minor / major semi-axis
MARGIN_PX = 1.5  # gap between the largest shape's circumcircle and the frame, in pixels
_CHUNK_PIXELS = 1 << 22  # pixels rasterised at once (16 MiB per float32 temporary)


def sample_factors(n: int, generator: torch.Generator) -> Tensor:
    """Draw n independent factor vectors, float32 (n, 5) in FACTOR_NAMES order."""
    shape = torch.randint(len(SHAPE_NAMES), (n,), generator=generator).float()
    u = torch.rand(n, 4, generator=generator)  # (n, 4) uniform in [0, 1)
    lo, hi = SCALE_RANGE
    scale = lo + (hi - lo) * u[:, 0]
    rotation = 2 * math.pi * u[:, 1]
    return torch.stack([shape, scale, rotation, u[:, 2], u[:, 3]], dim=1)


def max_radius_limit(image_size: int) -> float:
    """The largest ``max_radius`` whose shapes keep a MARGIN_PX border at ``image_size``."""
    return 1.0 - MARGIN_PX * 2.0 / image_size


def render(
    factors: Tensor,
    image_size: int,
    max_radius: float = MAX_RADIUS,
    outline_px: float | None = None,
) -> Tensor:
    """Rasterise float32 (N, 5) factors into uint8 (N, 1, S, S) images, S = image_size; the
    largest shape's circumradius is ``max_radius`` half frame widths. Filled shapes, or with
    ``outline_px`` only a line of that width (in pixels) centred on the outline (coverage
    clamp(outline_px / 2 + 0.5 - |distance| in pixels, 0, 1))."""
    n, s = factors.shape[0], image_size
    images = torch.empty(n, 1, s, s, dtype=torch.uint8)
    px = 2.0 / s  # one pixel in half frame widths
    grid = (torch.arange(s, dtype=torch.float32) + 0.5) * px - 1.0  # (S,) pixel centres
    reach = 1.0 - max_radius - MARGIN_PX * px  # how far a centre may move from the middle
    chunk = max(1, _CHUNK_PIXELS // (s * s))
    for shape_id in range(len(SHAPE_NAMES)):
        index = torch.nonzero(factors[:, 0] == shape_id).squeeze(1)
        for part in index.split(chunk):
            _, scale, rotation, pos_x, pos_y = factors[part].T[:, :, None, None]  # (B, 1, 1)
            dx = grid.view(1, 1, s) - (2 * pos_x - 1) * reach  # (B, 1, S)
            dy = grid.view(1, s, 1) - (2 * pos_y - 1) * reach  # (B, S, 1)
            cos, sin = torch.cos(rotation), torch.sin(rotation)
            # shape frame; y points down, so this turns the shape counter-clockwise on screen
            u = cos * dx - sin * dy  # (B, S, S)
            v = sin * dx + cos * dy  # (B, S, S)
            dist = _DISTANCES[shape_id](u, v, max_radius * scale)  # (B, S, S)
            if outline_px is None:
                coverage = (0.5 - dist / px).clamp_(0.0, 1.0)
            else:
                coverage = (outline_px / 2 + 0.5 - dist.abs() / px).clamp_(0.0, 1.0)
            images[part, 0] = coverage.mul_(255).round_().to(torch.uint8)
    return images


def _square(u: Tensor, v: Tensor, r: Tensor) -> Tensor:
    """Distance to a square of circumradius r (exact along the edges)."""
    return torch.maximum(u.abs(), v.abs()) - r / math.sqrt(2)


def _ellipse(u: Tensor, v: Tensor, r: Tensor) -> Tensor:
    """First-order distance (g - 1) / |grad g| to the ellipse g = 1, semi-axes r and aspect*r."""
    a2, b2 = r**2, (ELLIPSE_ASPECT * r) ** 2
    g = torch.sqrt(u**2 / a2 + v**2 / b2)
    grad = torch.sqrt((u / a2) ** 2 + (v / b2) ** 2).clamp_min_(1e-12)
    return (g - 1) * g / grad


def _triangle(u: Tensor, v: Tensor, r: Tensor) -> Tensor:
    """Distance to an equilateral triangle of circumradius r pointing up (exact along edges)."""
    h = math.sqrt(3) / 2
    # outward edge normals (screen y down): down, up-right, up-left; the apex points up
    edges = torch.stack([v, h * u - 0.5 * v, -h * u - 0.5 * v])  # (3, B, S, S)
    return edges.amax(dim=0) - r / 2


_DISTANCES = (_square, _ellipse, _triangle)


class Shapes:
    """Procedural shapes made by genlab: 1 channel, labels 0/1/2 (square, ellipse, triangle),
    latent factors FACTOR_NAMES. Deterministic from ``seed``; train and test use different
    streams of it. ``max_radius``: the largest shape's circumradius in half frame widths (the
    larger, the less room the shapes have to move)."""

    name = "shapes"
    class_names = SHAPE_NAMES

    def __init__(
        self,
        num_train: int = 50000,
        num_test: int = 10000,
        image_size: int = 32,
        seed: int = 0,
        max_radius: float = MAX_RADIUS,
    ):
        if image_size not in IMAGE_SIZES:
            raise ValueError(
                f"data.source.image_size={image_size} is not supported by shapes; "
                f"use one of {IMAGE_SIZES}"
            )
        for key, value in (("num_train", num_train), ("num_test", num_test)):
            if value < 1:
                raise ValueError(f"data.source.{key}={value} must be >= 1")
        limit = max_radius_limit(image_size)
        if not 0 < max_radius <= limit:
            raise ValueError(
                f"data.source.max_radius={max_radius} must be in (0, {limit:g}] at image_size="
                f"{image_size} (the largest shape must fit in the frame)"
            )
        self.max_radius = max_radius
        self.sizes = {"train": num_train, "test": num_test}
        self.image_size = image_size
        self.seed = seed

    def prepare(self) -> None:
        """Nothing to fetch: the images are generated in load()."""

    def load(self, split: str) -> ImageArrays:
        """Generate the split: uint8 (N, 1, S, S) images, int64 (N,) labels, float32 (N, 5)."""
        check_split(self.name, split)
        generator = torch.Generator().manual_seed(derive_seed(self.seed, f"shapes/{split}"))
        factors = sample_factors(self.sizes[split], generator)
        return ImageArrays(
            render(factors, self.image_size, self.max_radius),
            factors[:, 0].long(),
            factors,
            FACTOR_NAMES,
        )
