"""How recognisable a run's samples are: the share the domain evaluator (the cached classifier of
the run's labelled data set) classifies with confidence >= a threshold, and the share of each
class among them.

    python -m genlab.metrics.classified RUN_DIR [--num-samples 1000] [--threshold 0.9]

This is the bar of the quickstart (``make train``): at least 90% of its samples classified with
confidence >= 0.9, every shape present in about equal shares.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate

from genlab.data.arrays import derive_seed
from genlab.metrics.evaluate import LoadedSplits, dataset_key, generate
from genlab.metrics.extractors import domain_evaluator
from genlab.runs import checkpoint_path, load_model, load_run_config


def confidence_summary(
    probabilities: torch.Tensor, class_names: list[str], threshold: float = 0.9
) -> dict[str, Any]:
    """From class probabilities (N, K): ``confident_share`` (max probability >= threshold), the
    mean of the max probability, and per class the share of samples predicted as it
    (``class_shares``) and of confident samples predicted as it (``confident_class_shares``)."""
    confidence, predicted = probabilities.max(dim=1)  # (N,), (N,)
    confident = confidence >= threshold  # (N,)
    num_confident = max(int(confident.sum()), 1)
    return {
        "num_samples": len(probabilities),
        "threshold": threshold,
        "confident_share": float(confident.float().mean()),
        "mean_confidence": float(confidence.mean()),
        "class_shares": {
            name: float((predicted == k).float().mean()) for k, name in enumerate(class_names)
        },
        "confident_class_shares": {
            name: int((predicted[confident] == k).sum()) / num_confident
            for k, name in enumerate(class_names)
        },
    }


def classify_run_samples(
    run_dir: str | Path,
    num_samples: int = 1000,
    threshold: float = 0.9,
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Draw ``num_samples`` samples of the run (``last.ckpt``, seeded) and classify them with the
    domain evaluator of the run's data set (trained and cached under ``cache_dir``, default the
    run's ``paths.cache_dir``, if it is not cached yet); returns ``confidence_summary``."""
    cfg = load_run_config(run_dir)
    model = load_model(cfg, checkpoint_path(run_dir))
    source = LoadedSplits(instantiate(cfg.data.source))
    evaluator = domain_evaluator(
        source, dataset_key(cfg.data), cfg.data.num_classes, cache_dir or cfg.paths.cache_dir
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "classified-samples"))
        images, _ = generate(model, num_samples, batch_size=500)  # (N, C, H, W)
    probabilities = evaluator.logits(images).softmax(dim=1)  # (N, K)
    names = list(getattr(source.source, "class_names", None) or [])
    names = names or [str(k) for k in range(cfg.data.num_classes)]
    return {
        "run_dir": str(run_dir),
        "evaluator": evaluator.key,
        **confidence_summary(probabilities, names, threshold),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    summary = classify_run_samples(
        args.run_dir, args.num_samples, args.threshold, args.seed, args.cache_dir
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
