"""The domain evaluator: a small CNN classifier that genlab trains once per labelled data set and
caches, so that FID / KID / precision-recall (its penultimate features) and the Inception Score
(its softmax) work offline and mean something for small gray or colour images.

Cache file: ``<cache_dir>/evaluators/<dataset_key>-<config digest>.pt``, a ``torch.save`` dict of
plain data (state_dict, config fields, dataset_key, image_shape, num_classes, test_accuracy),
written atomically and read with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import Tensor, nn

from genlab.data.arrays import ImageArrays, derive_seed
from genlab.utils.io import atomic_write_bytes

# Part of every config digest: bump it when the network or the training recipe changes, so that
# caches made by the old code are not read as if the new code had made them.
RECIPE_VERSION = 1
POOL_GRID = 2  # the last conv block's output is average-pooled to this many cells per axis
WEIGHT_DECAY = 5e-4


def _conv_block(c_in: int, c_out: int) -> list[nn.Module]:
    """Two 3x3 conv-BN-ReLU layers, then a 2x2 max-pool that halves H and W."""
    layers: list[nn.Module] = []
    for a, b in ((c_in, c_out), (c_out, c_out)):
        layers += [nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]
    return [*layers, nn.MaxPool2d(2)]


class EvaluatorNet(nn.Module):
    """Small CNN classifier. x float (B, C, H, W) in [0, 1] -> logits (B, num_classes).

    Two conv blocks (width, 2 * width channels; each ends in a 2x2 max-pool), average pooling
    to a POOL_GRID x POOL_GRID grid (which keeps the coarse layout and works for any image size),
    a ``feature_dim`` ReLU layer (the features), then a linear head.
    """

    def __init__(
        self, image_shape: Sequence[int], num_classes: int, feature_dim: int = 128, width: int = 32
    ):
        super().__init__()
        if len(image_shape) != 3 or min(image_shape[1:]) < 4:
            raise ValueError(f"image_shape={tuple(image_shape)} must be (C, H, W) with H, W >= 4")
        self.feature_dim = feature_dim
        self.body = nn.Sequential(
            *_conv_block(image_shape[0], width),
            *_conv_block(width, 2 * width),
            nn.AdaptiveAvgPool2d(POOL_GRID),  # (B, 2 * width, POOL_GRID, POOL_GRID)
            nn.Flatten(),
        )
        self.embed = nn.Sequential(nn.Linear(2 * width * POOL_GRID**2, feature_dim), nn.ReLU())
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate-layer features (B, feature_dim), after the ReLU."""
        return self.embed(self.body(x))  # (B, feature_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # (B, num_classes)


@dataclass(frozen=True)
class EvaluatorConfig:
    """Network size and training recipe of a domain evaluator; ``digest()`` names its cache."""

    feature_dim: int = 128
    width: int = 32
    epochs: int = 4
    batch_size: int = 128
    lr: float = 3e-3
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("feature_dim", "width", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"EvaluatorConfig.{name}={getattr(self, name)} must be >= 1")
        if not self.lr > 0:
            raise ValueError(f"EvaluatorConfig.lr={self.lr} must be > 0")

    def digest(self) -> str:
        """12 hex digits of sha256 over the fields (and RECIPE_VERSION) as canonical JSON."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["lr"] = float(values["lr"])  # lr=1 and lr=1.0 are the same recipe
        text = json.dumps({"recipe": RECIPE_VERSION, **values}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def _as_float(x: Tensor) -> Tensor:
    """uint8 images in [0, 255] -> float32 in [0, 1]; float images pass through as float32."""
    return x.float() / 255 if x.dtype == torch.uint8 else x.float()


def _batched(
    fn: Callable[[Tensor], Tensor], x: Tensor, batch_size: int, device: torch.device | str
) -> Tensor:
    """fn over x (N, C, H, W) in batches on ``device``; the (N, ...) result on x's device."""
    outputs = [fn(_as_float(chunk.to(device))) for chunk in x.split(batch_size)]
    return torch.cat(outputs).to(x.device)


@dataclass(eq=False)
class Evaluator:
    """A trained, frozen EvaluatorNet plus what it was trained on.

    ``key`` names this evaluator in caches of its features: ``<dataset_key>-<config digest>``,
    the stem of its cache file, so a new config never reuses features of an old one.
    """

    net: EvaluatorNet
    key: str
    test_accuracy: float
    config: EvaluatorConfig
    image_shape: tuple[int, int, int]
    num_classes: int

    def __post_init__(self) -> None:
        self.net.eval().requires_grad_(False)

    @property
    def feature_dim(self) -> int:
        return self.net.feature_dim

    @torch.no_grad()
    def features(self, x: Tensor, batch_size: int = 512) -> Tensor:
        """Features (N, feature_dim) of images x (N, C, H, W), float in [0, 1] or uint8."""
        return self._apply(self.net.features, x, batch_size)

    @torch.no_grad()
    def logits(self, x: Tensor, batch_size: int = 512) -> Tensor:
        """Class logits (N, num_classes) of images x (N, C, H, W), float in [0, 1] or uint8."""
        return self._apply(self.net, x, batch_size)

    def _apply(self, fn: Callable[[Tensor], Tensor], x: Tensor, batch_size: int) -> Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"evaluator {self.key!r} takes images (N, C, H, W) with (C, H, W) = "
                f"{self.image_shape}, got {tuple(x.shape)}"
            )
        self.net.eval()
        return _batched(fn, x, batch_size, next(self.net.parameters()).device)


def _check_labels(data: ImageArrays, num_classes: int, name: str) -> None:
    """Raise a ValueError unless every label of ``data`` (called ``name``) is a class index."""
    unlabelled = int((data.labels < 0).sum())
    if unlabelled:
        raise ValueError(
            f"{name} has {unlabelled} unlabelled images (label -1), but the domain evaluator is a "
            "classifier and needs labels: use the `inception` feature extractor for this data set "
            "(eval/extractor=inception)"
        )
    if len(data) and int(data.labels.max()) >= num_classes:
        raise ValueError(
            f"{name} has label {int(data.labels.max())}, but num_classes={num_classes}: "
            "pass the data set's number of classes"
        )


def _progress_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
    )


def train_evaluator(
    train: ImageArrays,
    test: ImageArrays,
    num_classes: int,
    config: EvaluatorConfig,
    progress: bool = True,
) -> tuple[EvaluatorNet, float]:
    """Train on train, return the net (eval mode) and its test accuracy in [0, 1].

    AdamW with a one-cycle learning-rate schedule peaking at ``config.lr``, no augmentation
    (random shifts lowered Fashion-MNIST accuracy at this budget); deterministic given
    ``config.seed`` (on a fixed machine and torch version).
    """
    _check_labels(train, num_classes, "the train split")
    _check_labels(test, num_classes, "the test split")
    if train.image_shape != test.image_shape or len(train) == 0 or len(test) == 0:
        raise ValueError(
            f"train and test must be non-empty with one image shape, got {len(train)} images "
            f"{train.image_shape} and {len(test)} images {test.image_shape}"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(config.seed, "evaluator/init"))
        net = EvaluatorNet(train.image_shape, num_classes, config.feature_dim, config.width)
    generator = torch.Generator().manual_seed(derive_seed(config.seed, "evaluator/batches"))
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch
    )
    net.train()
    with _progress_bar(progress) as bar:
        task = bar.add_task("evaluator", total=config.epochs * steps_per_epoch)
        for epoch in range(config.epochs):
            for index in torch.randperm(len(train), generator=generator).split(config.batch_size):
                images = _as_float(train.images[index])  # (B, C, H, W)
                loss = F.cross_entropy(net(images), train.labels[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                bar.update(
                    task,
                    advance=1,
                    description=f"evaluator epoch {epoch + 1}/{config.epochs} loss {loss:.3f}",
                )
    net.eval()
    with torch.no_grad():
        predictions = _batched(net, test.images, 512, "cpu").argmax(dim=1)  # (N,)
    return net, float((predictions == test.labels).float().mean())


def _cache_path(cache_dir: str | Path, dataset_key: str, config: EvaluatorConfig) -> Path:
    return Path(cache_dir) / "evaluators" / f"{dataset_key}-{config.digest()}.pt"


def _save(path: Path, evaluator: Evaluator, dataset_key: str) -> None:
    """Write the evaluator's plain-data dict to ``path`` atomically."""
    payload = {
        "state_dict": evaluator.net.state_dict(),
        "config": asdict(evaluator.config),
        "dataset_key": dataset_key,
        "image_shape": list(evaluator.image_shape),
        "num_classes": evaluator.num_classes,
        "test_accuracy": evaluator.test_accuracy,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _corrupt(path: Path, err: Exception) -> ValueError:
    return ValueError(
        f"evaluator cache {path} is unreadable, corrupt or not an evaluator file "
        f"({type(err).__name__}, see above); delete it to retrain the evaluator"
    )


def _load(
    path: Path,
    dataset_key: str,
    image_shape: tuple[int, int, int],
    num_classes: int,
    config: EvaluatorConfig,
) -> Evaluator:
    """Read a cache file; raise a ValueError naming it if it is corrupt or was made for other
    data or another config than the arguments."""
    expected = {
        "dataset_key": dataset_key,
        "image_shape": list(image_shape),
        "num_classes": num_classes,
        "config": asdict(config),
    }
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        stored = {key: payload[key] for key in expected}
        accuracy = float(payload["test_accuracy"])
        state_dict = payload["state_dict"]
    except (OSError, EOFError, RuntimeError, pickle.UnpicklingError, LookupError, TypeError) as err:
        raise _corrupt(path, err) from err
    mismatches = [
        f"{key}: file has {stored[key]!r}, expected {value!r}"
        for key, value in expected.items()
        if stored[key] != value
    ]
    if mismatches:
        raise ValueError(
            f"evaluator cache {path} was made for other data ({'; '.join(mismatches)}); "
            "delete it to retrain the evaluator"
        )
    net = EvaluatorNet(image_shape, num_classes, config.feature_dim, config.width)
    try:
        net.load_state_dict(state_dict)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise _corrupt(path, err) from err
    return Evaluator(net, path.stem, accuracy, config, image_shape, num_classes)


def load_or_train_evaluator(
    dataset_key: str,
    train: ImageArrays,
    test: ImageArrays,
    num_classes: int,
    cache_dir: str | Path,
    config: EvaluatorConfig = EvaluatorConfig(),  # frozen, so one shared default is safe
    progress: bool = True,
) -> Evaluator:
    """Load <cache_dir>/evaluators/<dataset_key>-<config.digest()>.pt if present, else train and
    save it (atomically). With ``progress``, show a progress bar and print the test accuracy."""
    for split, data in (("train", train), ("test", test)):
        _check_labels(data, num_classes, f"data set {dataset_key!r} ({split} split)")
    path = _cache_path(cache_dir, dataset_key, config)
    if path.is_file():
        evaluator = _load(path, dataset_key, train.image_shape, num_classes, config)
        note = f"cached at {path}"
    else:
        start = time.perf_counter()
        net, accuracy = train_evaluator(train, test, num_classes, config, progress)
        evaluator = Evaluator(net, path.stem, accuracy, config, train.image_shape, num_classes)
        _save(path, evaluator, dataset_key)
        note = f"trained in {time.perf_counter() - start:.0f} s, cached at {path}"
    Console(quiet=not progress, highlight=False).print(
        f"evaluator {dataset_key}: test accuracy {evaluator.test_accuracy:.2%} ({note})",
        soft_wrap=True,
    )
    return evaluator
