"""How many torch threads a genlab-train process uses (the ``threads`` config key).

Torch's CPU threads busy-wait for each other: when processes together run more threads than
there are cores, each step waits for threads that are not running, and training slows down up
to 8x (benchmarks/cpu_threads.py). ``threads: auto`` (the default) gives each process its share
of the cores this process may use: cores / (jobs a joblib sweep runs at once x CPU DDP processes
of a run), at least 1, and never more than ``OMP_NUM_THREADS`` when that is set. An integer sets
the count.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. a SLURM or taskset limit)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def concurrent_jobs(cores: int) -> int:
    """Jobs of this sweep that run at once: the joblib launcher's n_jobs (negative: cores + 1 +
    n_jobs, as joblib counts), else 1."""
    if not HydraConfig.initialized():
        return 1
    launcher = HydraConfig.get().launcher
    if "joblib" not in str(launcher.get("_target_", "")).lower():
        return 1
    n_jobs = launcher.get("n_jobs") or 1
    return max(1, n_jobs if n_jobs > 0 else cores + 1 + n_jobs)


def processes_per_run(trainer_cfg: Any) -> int:
    """Processes one run starts on this machine: CPU DDP's devices, else 1."""
    devices = trainer_cfg.get("devices", 1)
    if trainer_cfg.get("accelerator") == "cpu" and isinstance(devices, int) and devices > 1:
        return devices
    return 1


def thread_count(setting: int | str, trainer_cfg: Any) -> int:
    """The torch thread count for ``threads=setting`` (an int >= 1, or ``auto``)."""
    if setting != "auto":
        return int(setting)
    cores = available_cores()
    share = max(1, cores // (concurrent_jobs(cores) * processes_per_run(trainer_cfg)))
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return min(share, int(limit)) if limit.isdigit() and int(limit) > 0 else share


def configure_threads(setting: int | str, trainer_cfg: Any) -> int:
    """Set torch's thread count for ``threads=setting``; returns it."""
    count = thread_count(setting, trainer_cfg)
    torch.set_num_threads(count)
    return count
