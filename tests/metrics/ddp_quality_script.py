"""Computes the sample-quality metrics once in one process and once split over two gloo
processes; writes both to the JSON file given as argument (used by test_quality.py)."""

import json
import os
import socket
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from genlab.metrics.quality import QualitySettings, sample_quality

SETTINGS = QualitySettings(kid_subsets=5, kid_subset_size=100, is_splits=1, nearest_k=3)


def data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    real = torch.randn(400, 8, generator=g)
    fake = torch.randn(300, 8, generator=g) * 1.2 + 0.3
    return real, fake, torch.randn(300, 5, generator=g)


def worker(rank: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    real, fake, logits = data()
    metrics = sample_quality(real[rank::2], fake[rank::2], logits[rank::2], SETTINGS)
    if rank == 0:
        with open(out, "w") as f:
            json.dump(metrics, f)
    dist.barrier()
    dist.destroy_process_group()


def main(out: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(worker, args=(port, out + ".ddp"), nprocs=2)
    single = sample_quality(*data(), SETTINGS)
    with open(out + ".ddp") as f:
        ddp = json.load(f)
    os.remove(out + ".ddp")
    with open(out, "w") as f:
        json.dump({"single": single, "ddp": ddp}, f)


if __name__ == "__main__":
    main(sys.argv[1])
