"""Evaluates a small VAE's samples once in one process and once split over two gloo processes;
writes both (every metric, and each rank's) to the JSON file given as argument (used by
test_quality.py).

    PYTHONPATH=<repo> python ddp_quality_script.py OUT.json
"""

import json
import socket
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from genlab.metrics.evaluate import evaluate_samples
from tests.metrics import toys
from tests.metrics.test_evaluate import vae

# 5 batches of 20 (3 for rank 0, 2 for rank 1); 50 memorization queries span three batches
SETTINGS = toys.settings(num_samples=90, batch_size=20, memorization_samples=50)


def evaluate(rank: int = 0, world_size: int = 1) -> dict[str, float]:
    torch.manual_seed(0)  # the same weights in every process
    model = vae()
    torch.manual_seed(rank)  # as seed_everything + per-rank streams may leave each process
    with tempfile.TemporaryDirectory() as cache:
        metrics, grid = evaluate_samples(
            model,
            toys.datamodule(),
            "gray",
            toys.ProjectionExtractor(),
            SETTINGS,
            cache,
            rank,
            world_size,
        )
    return {**metrics, "grid_sum": float(grid.images.sum()), "grid_len": len(grid.images)}


def worker(rank: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    metrics = evaluate(rank, 2)
    with open(f"{out}.rank{rank}", "w") as f:
        json.dump(metrics, f)
    dist.barrier()
    dist.destroy_process_group()


def main(out: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # fork: the workers inherit the imports (spawn would import torch, lightning... again)
    mp.start_processes(worker, args=(port, out), nprocs=2, start_method="fork")
    ranks = []
    for rank in range(2):
        with open(f"{out}.rank{rank}") as f:
            ranks.append(json.load(f))
    with open(out, "w") as f:
        json.dump({"single": evaluate(), "ranks": ranks}, f)


if __name__ == "__main__":
    main(sys.argv[1])
