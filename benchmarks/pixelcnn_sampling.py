"""Samples/s of naive vs cached sampling for the default gated PixelCNN, written as JSON.

    python benchmarks/pixelcnn_sampling.py [--batch-size 64] [--repeats 3] [--threads N]
        [--out results.json]

The model is ``experiment=pixelcnn_mnist``'s (class-conditional gated PixelCNN, 28x28 binarized
MNIST) with random weights: the cost of sampling does not depend on the weights. Both samplers
get the same uniforms. The naive one (784 full forward passes) runs once; the cached one runs
``--repeats`` times before it and again after it (after a warm-up run), so that both see the
machine's load of the time, and its median is reported. The report says whether the two drew
identical images (in float32; the tests prove exactness in float64, where rounding cannot flip
a pixel).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import lightning
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from genlab.nets.pixelcnn_sampling import cached_sample, naive_sample
from genlab.train import CONFIG_DIR
from genlab.utils.io import atomic_write_json

GOAL = 10.0  # speed-up of cached over naive sampling


def timed(sample: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, float]:
    """The sampler's images and its wall time in seconds."""
    start = time.perf_counter()
    images = sample()
    return images, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed cached-sampler runs before and after naive"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's choice); 1 gives stable figures on shared cores",
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "pixelcnn_sampling.json"
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=["experiment=pixelcnn_mnist"])
    torch.manual_seed(0)
    model = instantiate(cfg.model).eval()
    net, output = model.net, model.output
    noise = torch.Generator().manual_seed(0)
    u = torch.rand(args.batch_size, *model.image_shape, generator=noise)  # (B, C, H, W)
    y = torch.arange(args.batch_size) % model.num_classes  # (B,)
    load_start = os.getloadavg()[0]

    def run_cached() -> list[tuple[torch.Tensor, float]]:
        return [timed(lambda: cached_sample(net, output, u, y)) for _ in range(args.repeats)]

    cached_sample(net, output, u, y)  # warm-up
    cached_runs = run_cached()
    naive, naive_s = timed(lambda: naive_sample(net, output, u, y))
    cached_runs += run_cached()  # before and after: both see the machine's load of the time
    cached_s = statistics.median(seconds for _, seconds in cached_runs)
    cached = cached_runs[0][0]

    report = {
        "benchmark": "pixelcnn_sampling",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": OmegaConf.to_container(cfg.model.net, resolve=True),
        "conditional": model.num_classes > 0,
        "image_shape": list(model.image_shape),
        "batch_size": args.batch_size,
        "num_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1m_at_start": round(load_start, 2),  # above 1: not alone
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "python": platform.python_version(),
        "goal_speedup": GOAL,
        "results": {
            "naive_s": round(naive_s, 2),
            "naive_samples_per_s": round(args.batch_size / naive_s, 3),
            "cached_s": round(cached_s, 3),
            "cached_runs_s": [round(seconds, 3) for _, seconds in cached_runs],
            "cached_samples_per_s": round(args.batch_size / cached_s, 2),
            "speedup": round(naive_s / cached_s, 1),
            "identical_images": torch.equal(naive, cached),
            "pixels_differing": int((naive != cached).sum()),
        },
    }
    atomic_write_json(args.out, report)
    print(f"wrote {args.out}")
    results = report["results"]
    print(
        f"naive {results['naive_samples_per_s']:.2f} samples/s, cached "
        f"{results['cached_samples_per_s']:.1f} samples/s: {results['speedup']}x "
        f"(goal {GOAL:g}x), identical images: {results['identical_images']}"
    )


if __name__ == "__main__":
    main()
