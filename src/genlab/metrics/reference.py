"""Reference statistics of real images, computed once per (data set, split and the settings
that change its pixels, extractor, count) and cached on disk, so that later evaluations never
touch the real images again."""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from genlab.metrics.extractors import FeatureExtractor
from genlab.utils.io import atomic_write_bytes

log = logging.getLogger(__name__)


class Reference(NamedTuple):
    """Real features (N, D), and their mean (D,) and covariance (D, D)."""

    features: Tensor

    @property
    def mean(self) -> Tensor:
        return self.features.double().mean(0)

    @property
    def covariance(self) -> Tensor:
        return torch.cov(self.features.double().T)


def split_key(split: str, settings: Mapping[str, int | bool]) -> str:
    """A split and the settings that change its pixels, for file names:
    ``test``, ``test-binarize-split_seed0``, ``train-split_seed0-val_size5000``."""
    parts = [key if value is True else f"{key}{value}" for key, value in sorted(settings.items())]
    return "-".join([split, *parts])


def reference_path(
    cache_dir: str | Path, dataset_key: str, split: str, extractor_key: str, count: int
) -> Path:
    """``split`` names the images (see ``split_key``)."""
    return Path(cache_dir) / "reference" / f"{dataset_key}-{split}-{extractor_key}-n{count}.pt"


def load_or_compute_reference(
    extractor: FeatureExtractor,
    images: Tensor,
    dataset_key: str,
    split: str,
    count: int,
    cache_dir: str | Path,
) -> Reference:
    """Features of the first ``count`` of ``images`` (uint8 (N, C, H, W); all if fewer), from
    the cache when present. ``split`` names the images in the cache (see ``split_key``)."""
    count = min(count, len(images))
    path = reference_path(cache_dir, dataset_key, split, extractor.key, count)
    if path.is_file():
        try:
            state = torch.load(path, weights_only=True)
            return Reference(state["features"])
        except Exception as error:
            raise RuntimeError(
                f"cached reference statistics {path} cannot be read ({error}); delete the file "
                "and they will be computed again"
            ) from error
    reference = Reference(extractor.features(images[:count].float() / 255))  # (N, C, H, W)
    buffer = io.BytesIO()
    torch.save({"features": reference.features}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    log.info("cached reference statistics of %d %s images at %s", count, split, path)
    return reference
