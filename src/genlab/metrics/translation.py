"""Quality of an unpaired translation model (CycleGAN) on the test split of both domains.

For each direction (AtoB: G(testA) against the real testB; BtoA: F(testB) against testA):

- ``fid_<dir>``, ``kid_mean_<dir>``, ``kid_std_<dir>``: FID and KID between the features of
  the translations and of the real test images of the target domain (torchmetrics, on the
  configured extractor). With the 120 / 140 test images of horse2zebra, FID is strongly biased
  (its covariances come from fewer images than feature dimensions) while KID is unbiased: KID
  is the number to compare across runs; its subsets are as large as the smaller set.
- ``domain_acc_<dir>``: the share of translations that a domain classifier trained on trainA vs
  trainB (the cached domain evaluator of the pair) assigns to the target domain.

``fid``, ``kid_mean``, ``kid_std`` and ``domain_acc`` are the means over the two directions (one
number per quality for best-of-run selection and studies). ``classifier_acc_real`` is the
classifier's accuracy on the real test images (what a perfect translation would score).
Translations are rounded to 8-bit levels, as when saved. Under DDP each process translates its
share of the images; the features are gathered and every process computes the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import torch
import torch.distributed as dist
from torch import Tensor, nn

from genlab.metrics.extractors import FeatureExtractor
from genlab.metrics.quality import QualitySettings, frechet_distance, kernel_distance

DIRECTIONS = {"AtoB": ("A", "B"), "BtoA": ("B", "A")}  # direction -> (source, target) domain
DOMAIN_LABELS = {"A": 0, "B": 1}


class Translator(Protocol):
    """A model that maps images (N, C, H, W) in [0, 1] of one domain to the other, at its
    ``image_shape`` (C, H, W)."""

    image_shape: tuple[int, int, int]

    def parameters(self) -> Iterator[nn.Parameter]: ...

    def translate(self, images: Tensor, direction: str) -> Tensor: ...


def check_direction(direction: str) -> tuple[str, str]:
    """(source, target) domains of ``direction``; ValueError naming the choices otherwise."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction={direction!r} must be one of {', '.join(DIRECTIONS)}")
    return DIRECTIONS[direction]


def _gather(t: Tensor) -> Tensor:
    """Every process's rows of ``t`` (the same count each) in rank order; ``t`` alone outside
    a distributed run. Rows r, r + W, ... of a set go to rank r, so the gathered order
    interleaves them back only up to a permutation, which no metric here depends on."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return t
    sizes = [torch.zeros((), dtype=torch.long) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor(len(t)))
    largest = int(max(sizes))
    padded = torch.zeros(largest, *t.shape[1:], dtype=t.dtype)
    padded[: len(t)] = t
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([part[: int(n)] for part, n in zip(parts, sizes, strict=True)])


@torch.no_grad()
def translate_images(model: Translator, images: Tensor, direction: str, batch_size: int) -> Tensor:
    """``model.translate`` over images (N, C, H, W) in [0, 1] in batches on the model's device,
    rounded to 8-bit levels: float (N, C, H, W) on the CPU."""
    check_direction(direction)
    device = next(model.parameters()).device
    out = [
        model.translate(chunk.to(device), direction).clamp(0, 1).mul(255).round().div(255).cpu()
        for chunk in images.split(batch_size)
    ]
    return torch.cat(out) if out else images.clone()


def evaluate_translation(
    model: Translator,
    test_images: Callable[[str], Tensor],
    extractor: FeatureExtractor,
    classifier: FeatureExtractor,
    quality: QualitySettings,
    batch_size: int,
    rank: int = 0,
    world_size: int = 1,
) -> dict[str, float]:
    """The metrics above. ``test_images(domain)`` gives a domain's test images, float
    (N, C, H, W) in [0, 1]; ``classifier.logits`` are domain logits (A: class 0, B: class 1)."""
    metrics: dict[str, float] = {}
    correct_real = total_real = 0
    for direction, (source, target) in DIRECTIONS.items():
        mine = test_images(source)[rank::world_size]  # this process's share
        fakes = translate_images(model, mine, direction, batch_size)
        fake_features = _gather(extractor.features(fakes))  # (N_source, D)
        real = test_images(target)
        real_features = extractor.features(real)  # (N_target, D), whole set in every process
        predictions = _gather(classifier.logits(fakes).argmax(dim=1))  # (N_source,)
        real_predictions = classifier.logits(real).argmax(dim=1)  # (N_target,)
        subset = min(quality.kid_subset_size, len(real_features), len(fake_features))
        kid_mean, kid_std = kernel_distance(
            real_features, fake_features, quality.kid_subsets, subset
        )
        metrics[f"fid_{direction}"] = frechet_distance(real_features, fake_features)
        metrics[f"kid_mean_{direction}"] = kid_mean
        metrics[f"kid_std_{direction}"] = kid_std
        metrics[f"domain_acc_{direction}"] = float(
            (predictions == DOMAIN_LABELS[target]).float().mean()
        )
        correct_real += int((real_predictions == DOMAIN_LABELS[target]).sum())
        total_real += len(real_predictions)
    for name in ("fid", "kid_mean", "kid_std", "domain_acc"):
        metrics[name] = sum(metrics[f"{name}_{d}"] for d in DIRECTIONS) / len(DIRECTIONS)
    metrics["classifier_acc_real"] = correct_real / total_real
    return metrics
