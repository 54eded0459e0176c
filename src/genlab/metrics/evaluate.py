"""Sample-quality evaluation of a trained model: generate, extract features, compare with the
cached reference of the real split, and check for memorization of training images.

The real images are the data as the model was trained on it (``ImageDataModule.eval_images``):
with ``data.binarize=true``, the split's seeded binarization, for the reference of FID / KID /
IS / precision-recall and for the memorization check's training images alike. Under DDP each
process draws and featurises a share of the samples; the shares are gathered in their order, so
every metric equals the one-process value.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from torchmetrics.utilities.distributed import gather_all_tensors

from genlab.data.arrays import ImageArrays, derive_seed
from genlab.errors import UsageError
from genlab.metrics.extractors import FeatureExtractor
from genlab.metrics.nearest import memorization_grid, memorization_summary, nearest_neighbours
from genlab.metrics.quality import QualitySettings, sample_quality
from genlab.metrics.reference import load_or_compute_reference, split_key
from genlab.utils.images import Grid
from genlab.utils.precision import full_precision


def dataset_key(data_cfg: DictConfig) -> str:
    """Names a data set for caches: source name, image shape and a hash of the source config
    (so, e.g., shapes with another seed or size get their own evaluator and reference). The
    ``root`` counts only for sources whose content depends on it (not the official, checksummed
    data sets); ``download`` and ``cache_dir`` (where decoded images are kept) never do."""
    source = data_cfg.source
    fixed_content = getattr(get_class(source._target_), "fixed_content", False)
    ignored = {"download", "cache_dir", *(["root"] if fixed_content else [])}
    kept = {k: source[k] for k in sorted(source) if k not in ignored}
    kept = OmegaConf.to_container(OmegaConf.create(kept), resolve=True)
    if "root" in kept:
        kept["root"] = str(Path(kept["root"]).resolve())
    name = kept["_target_"].rsplit(".", 1)[-1].lower()
    digest = hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:8]
    return f"{name}-{data_cfg.channels}x{data_cfg.image_size}x{data_cfg.image_size}-{digest}"


class EvalData(Protocol):
    """The real images samples are scored against (``genlab.data.ImageDataModule``)."""

    def eval_images(self, split: str) -> Tensor: ...  # uint8 (N, C, H, W), as trained on

    def eval_settings(self, split: str) -> dict[str, int | bool]: ...  # what changes them


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
    return images.float().clamp(0, 1).mul(255).round().div(255)


def _draw(model: nn.Module, positions: Tensor, label: int | None) -> tuple[Tensor, Tensor | None]:
    """Samples number ``positions`` (n,) of a set, as float (n, C, H, W) in [0, 1] on the CPU, and
    their labels (n,): a class-conditional model gets ``label``, or class ``position % K``."""
    num_classes = getattr(model, "num_classes", 0)
    labels = None
    if num_classes > 0:
        labels = positions % num_classes if label is None else torch.full_like(positions, label)
    device = next(model.parameters()).device
    y = None if labels is None else labels.to(device)
    return _quantize(model.sample(len(positions), y=y)).cpu(), labels


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
    images, labels = [], []
    for positions in torch.arange(num_samples).split(batch_size):
        x, y = _draw(model, positions, label)
        images.append(x)
        labels.append(y)
    return torch.cat(images), None if num_classes == 0 else torch.cat(labels)


@torch.no_grad()
def generate_share(
    model: nn.Module, settings: EvalSettings, rank: int = 0, world_size: int = 1
) -> tuple[Tensor, Tensor]:
    """This process's share of the ``settings.num_samples`` evaluation samples, float
    (n, C, H, W) in [0, 1] on the CPU, and their positions (n,) in the whole set.

    The set is cut into batches of ``settings.batch_size``; process r draws batches r, r + W,
    ..., each from its own seed (``settings.seed``, batch number), so that the whole set is the
    same for any number of processes."""
    device = next(model.parameters()).device
    all_positions = torch.arange(settings.num_samples).split(settings.batch_size)
    images, positions = [torch.empty(0, *model.image_shape)], [torch.empty(0, dtype=torch.long)]
    for batch in range(rank, len(all_positions), world_size):
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(derive_seed(settings.seed, f"eval/batch{batch}"))
            images.append(_draw(model, all_positions[batch], None)[0])
        positions.append(all_positions[batch])
    return torch.cat(images), torch.cat(positions)


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_gather(t: Tensor) -> Tensor:
    """Every process's rows of t (any number each), concatenated in rank order, on t's device."""
    device = t.device
    if dist.get_backend() == "nccl":  # NCCL gathers CUDA tensors only
        device = torch.device("cuda", torch.cuda.current_device())
    return torch.cat(gather_all_tensors(t.contiguous().to(device))).to(t.device)


def gather_in_order(positions: Tensor, *tensors: Tensor) -> tuple[Tensor, ...]:
    """Under DDP, every process's rows of ``tensors`` sorted by their ``positions`` (n,) in the
    whole set; outside DDP the tensors themselves (already in order)."""
    if not _distributed():
        return tensors
    order = _all_gather(positions).argsort()
    return tuple(_all_gather(t)[order] for t in tensors)


def _reference(
    extractor: FeatureExtractor,
    data: EvalData,
    dataset_key: str,
    split: str,
    count: int,
    cache_dir: str,
) -> Tensor:
    """Features (N, D) of the first ``count`` images of ``split`` as the model was trained on
    them, cached under a key holding every setting that changes their pixels."""
    images = data.eval_images(split)
    key = split_key(split, data.eval_settings(split))
    return load_or_compute_reference(extractor, images, dataset_key, key, count, cache_dir).features


@full_precision()
def evaluate_samples(
    model: nn.Module,
    data: EvalData,
    dataset_key: str,
    extractor: FeatureExtractor,
    settings: EvalSettings,
    cache_dir: str,
    rank: int = 0,
    world_size: int = 1,
) -> tuple[dict[str, float], Grid]:
    """All sample-quality metrics of ``model`` against the real ``settings.split``, and a grid of
    samples beside their nearest training images, in float32 whatever the caller's autocast.

    Under DDP (``rank`` of ``world_size``; every process calls it) each process draws its share
    of the samples and searches the nearest training images of its share of the memorization
    queries; the metrics, computed from the gathered shares, are those of one process."""
    real = _reference(extractor, data, dataset_key, settings.split, settings.num_samples, cache_dir)
    fakes, positions = generate_share(model, settings, rank, world_size)  # (n, C, H, W), (n,)
    features = extractor.features(fakes)  # (n, D)
    all_features, all_logits = gather_in_order(positions, features, extractor.logits(fakes))
    metrics = sample_quality(real, all_features, all_logits, settings.quality, settings.seed)

    train = data.eval_images("train")  # (N, C, H, W) uint8
    train_features = _reference(extractor, data, dataset_key, "train", len(train), cache_dir)
    queries = positions < settings.memorization_samples  # (n,) this process's queries
    pixel_distances, pixel_index = nearest_neighbours(fakes[queries], train)
    feature_distances, _ = nearest_neighbours(features[queries], train_features)
    pixel_distances, feature_distances = gather_in_order(
        positions[queries], pixel_distances, feature_distances
    )
    metrics.update(memorization_summary(pixel_distances, feature_distances))
    shown = positions < min(settings.memorization_grid_rows, settings.memorization_samples)
    samples, index = gather_in_order(positions[shown], fakes[shown], pixel_index[shown[queries]])
    pairs = memorization_grid(samples, train, index)  # (2R, C, H, W)
    return metrics, Grid(pairs, 8)  # four (sample, nearest training image) pairs per row
