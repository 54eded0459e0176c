"""Reference statistics of real images, computed once per (data set, split, extractor, count)
and cached on disk, so that later evaluations never touch the real images again."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from genlab.data.arrays import ImageArrays
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


def reference_path(
    cache_dir: str | Path, dataset_key: str, split: str, extractor_key: str, count: int
) -> Path:
    return Path(cache_dir) / "reference" / f"{dataset_key}-{split}-{extractor_key}-n{count}.pt"


def images_as_float(arrays: ImageArrays, count: int) -> Tensor:
    """The first ``count`` images of a split as float (N, C, H, W) in [0, 1]."""
    return arrays.images[:count].float() / 255


def load_or_compute_reference(
    extractor: FeatureExtractor,
    arrays: ImageArrays,
    dataset_key: str,
    split: str,
    count: int,
    cache_dir: str | Path,
) -> Reference:
    """Features of the first ``count`` images of ``arrays`` (all if fewer), from the cache when
    present."""
    count = min(count, len(arrays))
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
    images = images_as_float(arrays, count)
    reference = Reference(extractor.features(images))
    buffer = io.BytesIO()
    torch.save({"features": reference.features}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    log.info("cached reference statistics of %d %s images at %s", count, split, path)
    return reference
