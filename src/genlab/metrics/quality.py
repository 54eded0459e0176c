"""FID, KID and IS from torchmetrics on features that were already extracted.

torchmetrics computes each metric from a feature module's outputs; genlab extracts the features
itself (so reference features can be cached) and hands them over through a pass-through module.
Each function takes whole point sets and computes in this process only (no DDP sync: under DDP
the caller gathers the points first, see ``genlab.metrics.evaluate``). The random KID subsets
and IS splits are drawn from a seeded generator, so a metric of given points is one number, in
every process and every call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from genlab.data.arrays import derive_seed
from genlab.metrics.nearest import neighbourhood_metrics


class PassThrough(nn.Module):
    """The 'feature extractor' for inputs that are features (or logits) already."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: Tensor) -> Tensor:
        return x


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """torch's global CPU generator (which torchmetrics draws from) set to ``seed`` inside and
    restored after."""
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        yield


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """FID between feature sets real (Nr, D) and fake (Nf, D)."""
    metric = FrechetInceptionDistance(feature=PassThrough(real.shape[1]), sync_on_compute=False)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return float(metric.compute())


def kernel_distance(
    real: Tensor, fake: Tensor, subsets: int, subset_size: int, seed: int = 0
) -> tuple[float, float]:
    """KID (mean, std over ``subsets`` random subsets of ``subset_size`` points, drawn with
    ``seed``)."""
    metric = KernelInceptionDistance(
        feature=PassThrough(real.shape[1]),
        subsets=subsets,
        subset_size=subset_size,
        sync_on_compute=False,
    )
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with seeded(derive_seed(seed, "kid_subsets")):
        mean, std = metric.compute()
    return float(mean), float(std)


def inception_score(logits: Tensor, splits: int, seed: int = 0) -> tuple[float, float]:
    """IS (mean, std over ``splits`` splits of a ``seed``-ed shuffle) from classifier logits
    (N, K)."""
    metric = InceptionScore(
        feature=PassThrough(logits.shape[1]), splits=splits, sync_on_compute=False
    )
    metric.update(logits)
    with seeded(derive_seed(seed, "is_splits")):
        mean, std = metric.compute()
    return float(mean), float(std)


@dataclass(frozen=True)
class QualitySettings:
    """How the sample-quality metrics are computed (see conf/eval/default.yaml)."""

    kid_subsets: int = 100
    kid_subset_size: int = 1000
    is_splits: int = 10
    nearest_k: int = 3


def sample_quality(
    real_features: Tensor,
    fake_features: Tensor,
    fake_logits: Tensor,
    settings: QualitySettings,
    seed: int = 0,
) -> dict[str, float]:
    """Every feature-space metric of fakes against reals: FID, KID, IS of the fakes, improved
    precision / recall and density / coverage. Inputs are whole sets: (Nr, D), (Nf, D),
    (Nf, K); ``seed`` fixes the KID subsets and the IS splits."""
    subset_size = min(settings.kid_subset_size, len(real_features), len(fake_features))
    kid_mean, kid_std = kernel_distance(
        real_features, fake_features, settings.kid_subsets, subset_size, seed
    )
    is_mean, is_std = inception_score(fake_logits, settings.is_splits, seed)
    return {
        "fid": frechet_distance(real_features, fake_features),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "is_mean": is_mean,
        "is_std": is_std,
        **neighbourhood_metrics(real_features, fake_features, k=settings.nearest_k),
    }
