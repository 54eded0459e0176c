"""Nearest-neighbour sample metrics: improved precision / recall, density / coverage, and a
memorization check (each sample against its nearest training image).

Distances are Euclidean, computed in row blocks of ``batch_size`` rows so that only a few
``batch_size x N`` blocks of a distance matrix exist at a time: 10,000 x 10,000 features take
about 160 MB at the default 1024. A block uses ||a||^2 + ||b||^2 - 2 a.b in float32 (float64
inputs stay float64), clamped at 0 before the square root. A point lies inside a ball when
its distance is <= the ball's radius.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor


def _distance_blocks(a: Tensor, b: Tensor, batch_size: int) -> Iterator[tuple[int, Tensor]]:
    """Yield ``(start, distances)`` with distances (n, Nb) from rows a[start : start + n] to b."""
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(
            f"expected (Na, D) and (Nb, D) tensors, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    dtype = torch.promote_types(torch.promote_types(a.dtype, b.dtype), torch.float32)
    a, b = a.to(dtype), b.to(dtype)
    b_sq = b.pow(2).sum(dim=1)  # (Nb,)
    for start in range(0, a.shape[0], batch_size):
        rows = a[start : start + batch_size]  # (n, D)
        sq = torch.addmm(b_sq, rows, b.T, alpha=-2)  # (n, Nb), the only block-sized buffer
        sq.add_(rows.pow(2).sum(dim=1, keepdim=True))
        yield start, sq.clamp_(min=0).sqrt_()  # (n, Nb)


def pairwise_distances(a: Tensor, b: Tensor, batch_size: int = 1024) -> Tensor:
    """Euclidean distances between rows: a (Na, D), b (Nb, D) -> (Na, Nb)."""
    return torch.cat([block for _, block in _distance_blocks(a, b, batch_size)])


def kth_nearest_radii(features: Tensor, k: int = 3, batch_size: int = 1024) -> Tensor:
    """Distance from each point to its k-th nearest neighbour in the same set. (N, D) -> (N,).

    The point itself is the 0-th neighbour, so k = 1 is the nearest other point.
    """
    if k < 1 or features.shape[0] <= k:
        raise ValueError(
            f"k={k} needs 1 <= k < N, got N={features.shape[0]} points: lower k or pass more points"
        )
    radii = []
    for start, dist in _distance_blocks(features, features, batch_size):  # (n, N)
        dist.diagonal(offset=start).zero_()  # each point is exactly its own 0-th neighbour
        radii.append(dist.topk(k + 1, dim=1, largest=False).values[:, k])  # (n,)
    return torch.cat(radii)


def neighbourhood_metrics(
    real: Tensor, fake: Tensor, k: int = 3, batch_size: int = 1024
) -> dict[str, float]:
    """Precision, recall (Kynkaanniemi et al. 2019), density, coverage (Naeem et al. 2020).

    real (N, D), fake (M, D) features. Every point gets a ball whose radius is its k-NN
    distance within its own set. precision: share of fakes inside some real ball; recall:
    share of reals inside some fake ball; density: (1 / kM) sum over fakes of the number of
    real balls containing it (can exceed 1); coverage: share of real balls holding some fake.
    """
    real_radii = kth_nearest_radii(real, k, batch_size)  # (N,)
    fake_radii = kth_nearest_radii(fake, k, batch_size)  # (M,)
    real_balls_per_fake = torch.zeros(fake.shape[0], dtype=torch.long, device=real.device)
    real_covered = torch.empty(real.shape[0], dtype=torch.bool, device=real.device)
    real_in_fake_ball = torch.empty(real.shape[0], dtype=torch.bool, device=real.device)
    for start, dist in _distance_blocks(real, fake, batch_size):  # (n, M)
        rows = slice(start, start + dist.shape[0])
        in_real_ball = dist <= real_radii[rows, None]  # (n, M): fake j inside ball of real i
        real_balls_per_fake += in_real_ball.sum(dim=0)
        real_covered[rows] = in_real_ball.any(dim=1)
        real_in_fake_ball[rows] = (dist <= fake_radii).any(dim=1)
    n, m = real.shape[0], fake.shape[0]
    return {
        "precision": (real_balls_per_fake > 0).sum().item() / m,
        "recall": real_in_fake_ball.sum().item() / n,
        "density": real_balls_per_fake.sum().item() / (k * m),
        "coverage": real_covered.sum().item() / n,
    }


def precision_recall(
    real: Tensor, fake: Tensor, k: int = 3, batch_size: int = 1024
) -> dict[str, float]:
    """``precision`` and ``recall`` of :func:`neighbourhood_metrics`, which computes all four."""
    metrics = neighbourhood_metrics(real, fake, k, batch_size)
    return {key: metrics[key] for key in ("precision", "recall")}


def density_coverage(
    real: Tensor, fake: Tensor, k: int = 3, batch_size: int = 1024
) -> dict[str, float]:
    """``density`` and ``coverage`` of :func:`neighbourhood_metrics`, which computes all four."""
    metrics = neighbourhood_metrics(real, fake, k, batch_size)
    return {key: metrics[key] for key in ("density", "coverage")}


def _unit_float(images: Tensor) -> Tensor:
    """uint8 images -> float in [0, 1] (x / 255); floating tensors keep their values."""
    return images.float() / 255 if images.dtype == torch.uint8 else images.float()


def nearest_neighbours(
    queries: Tensor, references: Tensor, batch_size: int = 1024
) -> tuple[Tensor, Tensor]:
    """Each query's nearest reference: (distances (Q,), indices (Q,) int64).

    Inputs are flattened, so pixels (Q, C, H, W) vs (R, C, H, W) and features (Q, D) vs (R, D)
    both work; uint8 images count as x / 255. The search ranks with blocked distances; the
    returned distance is recomputed directly, so an exact copy reads exactly 0.
    """
    queries = _unit_float(queries).flatten(1)  # (Q, D)
    references = _unit_float(references).flatten(1)  # (R, D)
    blocks = [dist.argmin(dim=1) for _, dist in _distance_blocks(queries, references, batch_size)]
    indices = torch.cat(blocks) if blocks else torch.zeros(0, dtype=torch.long)  # (Q,)
    distances = (queries - references[indices]).norm(dim=1)  # (Q,)
    return distances, indices


def memorization_grid(samples: Tensor, train_images: Tensor, indices: Tensor) -> Tensor:
    """Each sample followed by its nearest training image, as float images in [0, 1].

    samples (Q, C, H, W) and train_images (N, C, H, W), float in [0, 1] or uint8; indices (Q,)
    from :func:`nearest_neighbours`. Returns (2Q, C, H, W) ordered sample_0, neighbour_0,
    sample_1, neighbour_1, ...: laid out with nrow=2, each grid row reads sample | neighbour.
    """
    if samples.shape[1:] != train_images.shape[1:]:
        raise ValueError(
            f"samples {tuple(samples.shape)} and train_images {tuple(train_images.shape)} "
            "must share (C, H, W)"
        )
    neighbours = train_images[indices.to(train_images.device)].to(samples.device)  # (Q, C, H, W)
    pairs = torch.stack([_unit_float(samples), _unit_float(neighbours)], dim=1)  # (Q, 2, C, H, W)
    return pairs.flatten(0, 1)  # (2Q, C, H, W)


def memorization_summary(pixel_distances: Tensor, feature_distances: Tensor) -> dict[str, float]:
    """Mean, min and 1st percentile of nearest-training-image distances, (Q,) each.

    Keys ``nn_{pixel,feature}_{mean,min,p01}``; pixel distances are between flattened images
    in [0, 1]. Small values flag samples that copy training images.
    """
    summary = {}
    for name, distances in (("pixel", pixel_distances), ("feature", feature_distances)):
        distances = distances.detach().double().flatten()  # (Q,)
        if distances.numel() == 0:
            raise ValueError(f"{name}_distances is empty: pass at least one distance")
        summary[f"nn_{name}_mean"] = distances.mean().item()
        summary[f"nn_{name}_min"] = distances.min().item()
        summary[f"nn_{name}_p01"] = torch.quantile(distances, 0.01).item()
    return summary
