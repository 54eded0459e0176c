"""FID, KID and IS from torchmetrics on features that were already extracted.

torchmetrics computes each metric from a feature module's outputs; genlab extracts the features
itself (so reference features can be cached) and hands them over through a pass-through module.
Each function takes this process's share of the points: under DDP torchmetrics sums the states
of every process before computing, so the result is that of all shares together.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.utilities.distributed import gather_all_tensors

from genlab.metrics.nearest import neighbourhood_metrics


class PassThrough(nn.Module):
    """The 'feature extractor' for inputs that are features (or logits) already."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: Tensor) -> Tensor:
        return x


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """FID between feature sets real (Nr, D) and fake (Nf, D)."""
    metric = FrechetInceptionDistance(feature=PassThrough(real.shape[1]))
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return float(metric.compute())


def kernel_distance(
    real: Tensor, fake: Tensor, subsets: int, subset_size: int
) -> tuple[float, float]:
    """KID (mean, std over ``subsets`` random subsets of ``subset_size`` points)."""
    metric = KernelInceptionDistance(
        feature=PassThrough(real.shape[1]), subsets=subsets, subset_size=subset_size
    )
    metric.update(real, real=True)
    metric.update(fake, real=False)
    mean, std = metric.compute()
    return float(mean), float(std)


def inception_score(logits: Tensor, splits: int) -> tuple[float, float]:
    """IS (mean, std over ``splits`` splits) from classifier logits (N, K)."""
    metric = InceptionScore(feature=PassThrough(logits.shape[1]), splits=splits)
    metric.update(logits)
    mean, std = metric.compute()
    return float(mean), float(std)


def gather(t: Tensor) -> Tensor:
    """All processes' rows of t, concatenated (t itself outside DDP)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return t
    return torch.cat(gather_all_tensors(t.contiguous()))


@dataclass(frozen=True)
class QualitySettings:
    """How the sample-quality metrics are computed (see conf/eval/default.yaml)."""

    kid_subsets: int = 100
    kid_subset_size: int = 1000
    is_splits: int = 10
    nearest_k: int = 3


def sample_quality(
    real_features: Tensor, fake_features: Tensor, fake_logits: Tensor, settings: QualitySettings
) -> dict[str, float]:
    """Every feature-space metric of fakes against reals: FID, KID, IS of the fakes, improved
    precision / recall and density / coverage. Inputs are this process's shares: (Nr, D),
    (Nf, D), (Nf, K)."""
    all_real, all_fake = gather(real_features), gather(fake_features)
    subset_size = min(settings.kid_subset_size, len(all_real), len(all_fake))
    kid_mean, kid_std = kernel_distance(
        real_features, fake_features, settings.kid_subsets, subset_size
    )
    is_mean, is_std = inception_score(fake_logits, settings.is_splits)
    return {
        "fid": frechet_distance(real_features, fake_features),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "is_mean": is_mean,
        "is_std": is_std,
        **neighbourhood_metrics(all_real, all_fake, k=settings.nearest_k),
    }
