"""Images/s of ImageDataModule train loaders (MNIST, MNIST binarized, shapes), written as JSON.

    GENLAB_DATA=/path/to/data python benchmarks/data_loader.py [--out results.json]

Each case builds the data module, runs ``--warmup`` batches, then times ``--epochs`` full train
epochs (the loop only reads each batch's size) and reports their median.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import lightning
import torch

from genlab.data import ImageDataModule
from genlab.data.download import DataNotFoundError
from genlab.data.sources import MNIST, Shapes
from genlab.utils.io import atomic_write_json

GOAL = 50_000  # MNIST images/s at batch 64 on a 2-core CPU


def time_loader(dm: ImageDataModule, warmup: int, epochs: int) -> dict[str, object]:
    """Warm up, then time full epochs of the train loader."""
    loader = dm.train_dataloader()
    for i, _ in enumerate(loader):
        if i + 1 >= warmup:
            break
    rates = []
    for _ in range(epochs):
        seen = 0
        start = time.perf_counter()
        for x, _ in loader:
            seen += x.shape[0]
        rates.append(seen / (time.perf_counter() - start))
    return {
        "images_per_s": round(statistics.median(rates)),
        "epoch_images_per_s": [round(r) for r in rates],
        "images_per_epoch": seen,
        "batches_per_epoch": len(loader),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("GENLAB_DATA"))
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "data_loader.json"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=50, help="untimed batches first")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per case")
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("no data folder: set GENLAB_DATA or pass --data-dir (it must hold mnist/)")

    mnist = MNIST(args.data_dir)
    try:
        mnist.prepare()
    except DataNotFoundError as err:
        sys.exit(f"benchmarks/data_loader.py: {err}")
    start = time.perf_counter()
    shapes = Shapes(num_train=60000, num_test=10000, image_size=32)
    shapes_dm = ImageDataModule(shapes, 1, 32, 3, batch_size=args.batch_size)
    shapes_dm.setup()
    generate_s = time.perf_counter() - start

    cases = {
        "mnist": ImageDataModule(mnist, 1, 28, 10, batch_size=args.batch_size),
        "mnist_binarize": ImageDataModule(mnist, 1, 28, 10, args.batch_size, binarize=True),
        "shapes": shapes_dm,
    }
    results = {}
    for name, dm in cases.items():
        dm.setup()
        results[name] = time_loader(dm, args.warmup, args.epochs)
    results["shapes"]["generate_70000_images_s"] = round(generate_s, 2)

    report = {
        "benchmark": "data_loader",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "batch_size": args.batch_size,
        "num_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),  # above 1: not alone
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "python": platform.python_version(),
        "goal_mnist_images_per_s": GOAL,
        "results": results,
    }
    atomic_write_json(args.out, report)
    print(f"wrote {args.out}")
    for name, result in results.items():
        print(f"{name:>15}: {result['images_per_s']:>10,} images/s")


if __name__ == "__main__":
    main()
