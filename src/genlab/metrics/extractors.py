"""Feature extractors for the sample-quality metrics.

An extractor has a ``key`` (names its cached reference statistics), ``features(x)`` -> (N, D)
for FID / KID / precision-recall and ``logits(x)`` -> (N, K) for the Inception Score, with
x float (N, C, H, W) in [0, 1].

- ``evaluator``: genlab's domain evaluator, a small classifier trained once per labelled data set
  and cached (works offline; meaningful for 28-32 px data).
- ``inception``: the standard InceptionV3 of torch-fidelity, for numbers comparable with papers
  (needs the ``inception`` extra and its weights).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor

from genlab.metrics.evaluator import EvaluatorConfig, load_or_train_evaluator


class FeatureExtractor(Protocol):
    key: str

    def features(self, x: Tensor) -> Tensor: ...

    def logits(self, x: Tensor) -> Tensor: ...


def domain_evaluator(
    source: object, dataset_key: str, num_classes: int, cache_dir: str | Path, **config: object
) -> FeatureExtractor:
    """The cached evaluator of this data set, trained on its full train split if not cached."""
    return load_or_train_evaluator(
        dataset_key,
        source.load("train"),
        source.load("test"),
        num_classes,
        cache_dir,
        EvaluatorConfig(**config),
    )


class InceptionExtractor:
    """torch-fidelity's InceptionV3: 2048-d pool features and 1008-way logits. Gray images are
    tiled to 3 channels; images are resized to 299 px inside the network."""

    key = "inception"

    def __init__(self, batch_size: int = 100):
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3

            self.pool = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"])
            self.head = NoTrainInceptionV3(
                name="inception-v3-compat", features_list=["logits_unbiased"]
            )
        except ModuleNotFoundError as error:
            raise ModuleNotFoundError(
                "eval/extractor=inception needs torch-fidelity and torchvision: "
                "pip install -e '.[inception]' (its weights are downloaded on first use). "
                "Without them use the domain evaluator: eval/extractor=evaluator"
            ) from error
        self.batch_size = batch_size

    def _run(self, net: torch.nn.Module, x: Tensor) -> Tensor:
        outputs = []
        for batch in x.split(self.batch_size):
            rgb = batch.expand(-1, 3, -1, -1) if batch.shape[1] == 1 else batch  # (B, 3, H, W)
            outputs.append(net((rgb * 255).round().to(torch.uint8)))
        return torch.cat(outputs)

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        return self._run(self.pool, x)  # (N, 2048)

    @torch.no_grad()
    def logits(self, x: Tensor) -> Tensor:
        return self._run(self.head, x)  # (N, 1008)


def inception(
    source: object, dataset_key: str, num_classes: int, cache_dir: str | Path
) -> FeatureExtractor:
    """Config factory for the InceptionExtractor (the data set does not matter to it)."""
    return InceptionExtractor()
