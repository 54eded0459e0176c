"""Sample-quality evaluation of a trained model: generate, extract features, compare with the
cached reference of the real split, and check for memorization of training images."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from genlab.data.arrays import ImageArrays, derive_seed
from genlab.errors import UsageError
from genlab.metrics.extractors import FeatureExtractor
from genlab.metrics.nearest import memorization_grid, memorization_summary, nearest_neighbours
from genlab.metrics.quality import QualitySettings, sample_quality
from genlab.metrics.reference import load_or_compute_reference
from genlab.utils.images import Grid


def dataset_key(data_cfg: DictConfig) -> str:
    """Names a data set for caches: source name, image shape and a hash of the source config
    (so, e.g., shapes with another seed or size get their own evaluator and reference). The
    ``root`` counts only for sources whose content depends on it (not the official, checksummed
    data sets); ``download`` never does."""
    source = data_cfg.source
    fixed_content = getattr(get_class(source._target_), "fixed_content", False)
    ignored = {"download", "root"} if fixed_content else {"download"}
    kept = {k: source[k] for k in sorted(source) if k not in ignored}
    kept = OmegaConf.to_container(OmegaConf.create(kept), resolve=True)
    if "root" in kept:
        kept["root"] = str(Path(kept["root"]).resolve())
    name = kept["_target_"].rsplit(".", 1)[-1].lower()
    digest = hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:8]
    return f"{name}-{data_cfg.channels}x{data_cfg.image_size}x{data_cfg.image_size}-{digest}"


class LoadedSplits:
    """Wraps a data source so that each split is loaded once: an evaluation reads the train and
    test splits several times (evaluator, reference, memorization), and a training run that
    evaluates every N steps again at each evaluation."""

    def __init__(self, source: Any):
        self.source = source
        self._splits: dict[str, ImageArrays] = {}

    def load(self, split: str) -> ImageArrays:
        if split not in self._splits:
            self._splits[split] = self.source.load(split)
        return self._splits[split]


@dataclass(frozen=True)
class EvalSettings:
    """What to evaluate on (see conf/eval/default.yaml)."""

    num_samples: int = 10000
    split: str = "test"
    seed: int = 0
    batch_size: int = 500
    memorization_samples: int = 1000
    memorization_grid_rows: int = 16
    quality: QualitySettings = field(default_factory=QualitySettings)


def settings_from_config(eval_cfg: DictConfig) -> EvalSettings:
    """EvalSettings from the ``eval`` config node (its ``extractor`` is built separately)."""
    values = OmegaConf.to_container(eval_cfg, resolve=True)
    values.pop("extractor", None)
    quality = QualitySettings(**values.pop("quality", {}))
    return EvalSettings(**values, quality=quality)


def _quantize(images: Tensor) -> Tensor:
    """Round to 8-bit levels, as the images are when saved (N, C, H, W) in [0, 1]."""
    return images.clamp(0, 1).mul(255).round().div(255)


@torch.no_grad()
def generate(
    model: nn.Module, num_samples: int, batch_size: int, label: int | None = None
) -> tuple[Tensor, Tensor | None]:
    """``num_samples`` images from ``model.sample`` as float (N, C, H, W) in [0, 1] on the CPU,
    and their labels (N,) (None for an unconditional model). A class-conditional model gets
    ``label``, or every class in turn when it is None."""
    num_classes = getattr(model, "num_classes", 0)
    if label is not None and not 0 <= label < num_classes:
        kind = f"classes are 0..{num_classes - 1}" if num_classes else "the model is unconditional"
        raise UsageError(f"label={label} is not a class of this model: {kind}")
    device = next(model.parameters()).device
    labels = None
    if num_classes > 0:
        labels = torch.arange(num_samples, device=device) % num_classes  # (N,)
        if label is not None:
            labels.fill_(label)
    images = []
    for start in range(0, num_samples, batch_size):
        n = min(batch_size, num_samples - start)
        y = None if labels is None else labels[start : start + n]
        images.append(_quantize(model.sample(n, y=y)).cpu())
    return torch.cat(images), None if labels is None else labels.cpu()


def evaluate_samples(
    model: nn.Module,
    source: Any,
    data_cfg: DictConfig,
    extractor: FeatureExtractor,
    settings: EvalSettings,
    cache_dir: str,
    rank: int = 0,
    world_size: int = 1,
) -> tuple[dict[str, float], Grid]:
    """All sample-quality metrics of ``model`` against the real ``settings.split``, and a grid of
    samples beside their nearest training images. Under DDP each process generates its share
    of the samples and takes its share of the reference; the metrics cover all of them."""
    key = dataset_key(data_cfg)
    real = load_or_compute_reference(
        extractor, source.load(settings.split), key, settings.split, settings.num_samples, cache_dir
    )
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(derive_seed(settings.seed, f"eval/rank{rank}"))  # distinct per process
        fakes, _ = generate(
            model, len(range(rank, settings.num_samples, world_size)), settings.batch_size
        )
    fake_features = extractor.features(fakes)  # (N, D)
    metrics = sample_quality(
        real.features[rank::world_size], fake_features, extractor.logits(fakes), settings.quality
    )
    train = source.load("train")
    train_reference = load_or_compute_reference(
        extractor, train, key, "train", len(train), cache_dir
    )
    queries = fakes[: settings.memorization_samples]  # (M, C, H, W)
    pixel_distances, pixel_index = nearest_neighbours(queries, train.images)
    feature_distances, _ = nearest_neighbours(
        fake_features[: settings.memorization_samples], train_reference.features
    )
    metrics.update(memorization_summary(pixel_distances, feature_distances))
    rows = settings.memorization_grid_rows
    pairs = memorization_grid(queries[:rows], train.images, pixel_index[:rows])  # (2R, C, H, W)
    return metrics, Grid(pairs, 8)  # four (sample, nearest training image) pairs per row
