"""Speed-up of cached reference statistics: the first evaluation against MNIST's test split
extracts the features of its 10,000 images; later ones read them from the cache.

    GENLAB_DATA=/path/to/data python benchmarks/reference_cache.py [--out results.json]

Uses (and, the first time, trains) the MNIST domain evaluator in ``--cache-dir``; the reference
features go to a fresh temporary folder, so the cold case is really cold.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from genlab.config import CONFIG_DIR
from genlab.data.download import DataNotFoundError
from genlab.data.sources import MNIST
from genlab.metrics.evaluate import dataset_key
from genlab.metrics.evaluator import load_or_train_evaluator
from genlab.metrics.reference import load_or_compute_reference
from genlab.utils.io import atomic_write_json

CONFIG = Path(CONFIG_DIR)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("GENLAB_DATA"))
    parser.add_argument("--cache-dir", default=os.environ.get("GENLAB_CACHE", ".cache/genlab"))
    parser.add_argument("--repeats", type=int, default=5, help="timed cached loads")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "reference_cache.json"
    )
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("no data folder: set GENLAB_DATA or pass --data-dir (it must hold mnist/)")
    source = MNIST(args.data_dir)
    try:
        source.prepare()
    except DataNotFoundError as err:
        sys.exit(f"benchmarks/reference_cache.py: {err}")
    train, test = source.load("train"), source.load("test")
    key = dataset_key(OmegaConf.load(CONFIG / "data" / "mnist.yaml"))  # the key genlab-eval uses
    evaluator = load_or_train_evaluator(key, train, test, 10, args.cache_dir)

    with tempfile.TemporaryDirectory() as reference_dir:
        start = time.perf_counter()
        load_or_compute_reference(evaluator, test.images, key, "test", 10000, reference_dir)
        cold_s = time.perf_counter() - start
        warm = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            load_or_compute_reference(evaluator, test.images, key, "test", 10000, reference_dir)
            warm.append(time.perf_counter() - start)
    warm_s = statistics.median(warm)
    report = {
        "benchmark": "reference_cache",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "data": "mnist test split, 10000 images, domain evaluator features",
        "num_threads": torch.get_num_threads(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "cold_compute_s": round(cold_s, 4),
        "cached_load_s": round(warm_s, 4),
        "speedup": round(cold_s / warm_s, 1),
    }
    atomic_write_json(args.out, report)
    print(f"wrote {args.out}: {report['speedup']}x ({cold_s:.3f} s -> {warm_s:.4f} s)")


if __name__ == "__main__":
    main()
