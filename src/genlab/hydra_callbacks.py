"""Hydra callbacks of genlab-train (listed under ``hydra.callbacks`` in conf/hydra/default.yaml).

``NewRunDirectory`` keeps a new run out of an existing run's directory. It acts in
``on_run_start`` / ``on_multirun_start``, which Hydra calls before it writes anything into the
output directory (``.hydra/``, ``train.log``); ``on_job_start`` would come too late.

The extra processes of one run share its directory and are let through: Lightning's DDP
launcher re-runs the command with the parent's ``hydra.run.dir`` and ``LOCAL_RANK`` >= 1, and the
tasks of a multi-task SLURM step (``SLURM_NTASKS`` > 1) all start the same command.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from genlab.errors import UserError, error_text

# what a genlab-train run leaves in its directory
RUN_FILES = (".hydra", "metrics.json", "checkpoints", "multirun.yaml")


class RunDirectoryExistsError(UserError, FileExistsError):
    """The output directory of a new run already holds a previous run."""


def previous_run_files(directory: Path) -> list[str]:
    """The names of RUN_FILES present in ``directory`` or in its immediate subfolders (the jobs
    of a sweep)."""
    if not directory.is_dir():
        return []
    folders = [directory, *(p for p in sorted(directory.iterdir()) if p.is_dir())]
    return [
        str((f / n).relative_to(directory)) for f in folders for n in RUN_FILES if (f / n).exists()
    ]


def refuse_existing_run(directory: Path, key: str) -> None:
    """Raise RunDirectoryExistsError if ``directory`` (the value of ``key``) holds a run."""
    found = previous_run_files(directory)
    if found:
        raise RunDirectoryExistsError(
            f"{key}={directory} already holds a previous run ({', '.join(found[:5])}): "
            "genlab-train never writes into an existing run directory. Leave "
            f"{key} at its default (a new directory for every run) or name a new one; to "
            "continue that run pass ckpt_path=<its run dir>/checkpoints/last.ckpt (the resumed "
            "run gets a directory of its own)."
        )


def _resolved_dir(config: DictConfig, key: str) -> Path:
    """``key`` resolved on ``config`` itself, so that Hydra, when it creates the directory, reuses
    the same ``${now:...}`` (resolver values are cached in the config).

    ``${name}`` needs the ``${hydra:...}`` resolver, which reads HydraConfig: set it to
    ``config`` as Hydra's run_job does, and leave it set, for Hydra's sweepers resolve
    hydra.sweep.dir before any job sets it.
    """
    readonly = OmegaConf.is_readonly(config.hydra)
    HydraConfig.instance().set_config(config)  # marks config.hydra read-only: undone below
    OmegaConf.set_readonly(config.hydra, readonly)
    return Path(OmegaConf.select(config, key))


def is_extra_process() -> bool:
    """Whether this process is one of several started for the same run (see the module doc)."""
    return (
        int(os.environ.get("LOCAL_RANK", "0")) > 0 or int(os.environ.get("SLURM_NTASKS", "1")) > 1
    )


def _stop_if_taken(config: DictConfig, key: str) -> None:
    directory = _resolved_dir(config, key)
    if is_extra_process():
        return
    # Hydra turns an Exception raised by a callback into a warning and goes on; SystemExit
    # (exit status 1, the message on stderr) is what stops it
    try:
        refuse_existing_run(directory, key)
    except RunDirectoryExistsError as error:
        raise SystemExit(error_text(error)) from error


class NewRunDirectory(Callback):
    """Refuse to start a run (or a sweep) whose output directory already holds one."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _stop_if_taken(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _stop_if_taken(config, "hydra.sweep.dir")
