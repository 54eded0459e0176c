"""OmegaConf resolvers used by the config tree; registered once on import."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

# The config tree ships inside the package (src/genlab/conf; `conf` at the repository root links
# to it), so a wheel install finds it as well as an editable one.
CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")


def wandb_offline() -> bool:
    """W&B runs offline unless the environment asks for online (WANDB_MODE=online)."""
    return os.environ.get("WANDB_MODE", "offline").lower() != "online"


def run_stamp() -> str:
    """The time part of a run directory's name: HH-MM-SS-ffffff, so that runs started in the same
    second get directories of their own; in a multi-task SLURM step, whose tasks all run the same
    command and must share one directory, ``slurm<job id>.<step id>`` instead."""
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in os.environ:
        return f"slurm{os.environ['SLURM_JOB_ID']}.{os.environ.get('SLURM_STEP_ID', '0')}"
    return datetime.now().strftime("%H-%M-%S-%f")


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("wandb_offline"):
        OmegaConf.register_new_resolver("wandb_offline", wandb_offline)
    if not OmegaConf.has_resolver("run_stamp"):  # cached: one value per config
        OmegaConf.register_new_resolver("run_stamp", run_stamp, use_cache=True)


register_resolvers()
