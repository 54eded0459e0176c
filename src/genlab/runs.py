"""Reading a finished run back: its saved config, its model with checkpoint weights."""

from __future__ import annotations

import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from lightning import LightningModule
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import Tensor, nn

import genlab.config  # noqa: F401  (registers resolvers)
from genlab.errors import UserError
from genlab.validation import LIGHTNING_CKPT_NAMES, ConfigError, unimportable_targets

# how torch's weights-only unpickler names what it refuses: "Unsupported global: GLOBAL a.B"
# (a class off its allow-list), "unsupported GLOBAL posix.system whose module posix is blocked"
_REFUSED_GLOBAL = re.compile(r"unsupported (?:global: )?GLOBAL ([\w.]+)", re.IGNORECASE)


class CheckpointError(UserError, ValueError):
    """A checkpoint file cannot be read as a genlab (Lightning) checkpoint."""


class CheckpointMismatchError(UserError, ValueError):
    """A checkpoint's weights do not fit the model built from a config."""


class RunNotFoundError(UserError, FileNotFoundError):
    """A run directory, its saved config or its checkpoint does not exist."""


def load_run_config(run_dir: str | Path) -> DictConfig:
    """The run's saved config (``.hydra/config.yaml``) with ``paths.output_dir`` = run_dir."""
    run_dir = Path(run_dir)
    path = run_dir / ".hydra" / "config.yaml"
    if not path.is_file():
        what = "it holds no .hydra/config.yaml" if run_dir.is_dir() else "no such directory"
        raise RunNotFoundError(
            f"{run_dir} is not a genlab-train run directory ({what}): pass the directory of a "
            "run (outputs/runs/<date>/<time>_<name>, or a multirun job folder)"
        )
    cfg = OmegaConf.load(path)
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)
    return cfg


CHECKPOINT_NAMES = ("last", "best")  # <run_dir>/checkpoints/<name>.ckpt


def checkpoint_path(run_dir: str | Path, ckpt: str | Path | None = None) -> Path:
    """The checkpoint ``ckpt`` names: ``last`` (also when None) or ``best`` stand for
    ``<run_dir>/checkpoints/{last,best}.ckpt``, anything else is a path."""
    name = str(ckpt) if ckpt is not None else "last"
    path = (
        Path(run_dir) / "checkpoints" / f"{name}.ckpt" if name in CHECKPOINT_NAMES else Path(name)
    )
    if path.is_file():
        return path
    if name == "best":
        raise RunNotFoundError(
            f"checkpoint {path} not found: the run kept no best model, as it did not evaluate "
            "sample quality during training (callbacks.sample_quality.every_n_epochs or "
            "every_n_steps > 0); use --ckpt last or a checkpoint path"
        )
    raise RunNotFoundError(f"checkpoint {path} not found; pass another with --ckpt")


def read_state_dict(ckpt: str | Path, device: str = "cpu") -> dict[str, Tensor]:
    """The ``state_dict`` of a Lightning checkpoint, loaded with weights_only=True (tensors and
    plain data only: no code from the pickle runs)."""
    try:
        with warnings.catch_warnings():  # a foreign pickle's protocol is reported as corrupt below
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            state = torch.load(ckpt, map_location=device, weights_only=True)
    except Exception as error:  # whatever the bytes of a bad file make torch.load raise
        refused = _REFUSED_GLOBAL.search(str(error))
        if isinstance(error, pickle.UnpicklingError) and refused:  # a class outside the allow-list
            raise CheckpointError(
                f"checkpoint {ckpt} holds objects other than tensors and plain data "
                f"({refused.group(1)}), which genlab does not load (unpickling them could run "
                "code): pass a checkpoint written by genlab-train"
            ) from error
        raise CheckpointError(
            f"checkpoint {ckpt} is truncated, corrupt or not a checkpoint ({_reason(error)}): "
            "pass a checkpoint written by genlab-train, e.g. <run_dir>/checkpoints/last.ckpt"
        ) from error
    if not isinstance(state, Mapping) or not isinstance(state.get("state_dict"), Mapping):
        raise CheckpointError(
            f"checkpoint {ckpt} has no 'state_dict': it is not a checkpoint written by "
            "genlab-train (Lightning); pass one, e.g. <run_dir>/checkpoints/last.ckpt"
        )
    return dict(state["state_dict"])


def _reason(error: BaseException) -> str:
    """Why torch.load failed, in a few words: the error's type and the first line of a short
    message (torch's unpickler messages run over many lines of advice that does not apply)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if isinstance(error, pickle.UnpicklingError) or not lines or len(lines[0]) > 100:
        return type(error).__name__
    return f"{type(error).__name__}: {lines[0]}"


def _listed(keys: list[str], limit: int = 5) -> str:
    more = f", ... ({len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def state_dict_mismatch(expected: Mapping[str, Any], found: Mapping[str, Any]) -> list[str]:
    """How ``found`` (a checkpoint's state_dict) differs from ``expected`` (a model's): lines
    naming the first few missing, unexpected and mis-shaped keys; empty when they fit."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [
        f"{k} (checkpoint {tuple(found[k].shape)}, model {tuple(expected[k].shape)})"
        for k in expected
        if k in found and tuple(found[k].shape) != tuple(expected[k].shape)
    ]
    return [
        f"{what} ({len(keys)}): {_listed(keys)}"
        for what, keys in (
            ("missing from the checkpoint", missing),
            ("unexpected in the checkpoint", unexpected),
            ("of another shape", shapes),
        )
        if keys
    ]


def check_state_dict(
    model: nn.Module, state_dict: Mapping[str, Any], ckpt: str | Path, config: str
) -> None:
    """Raise CheckpointMismatchError, naming the checkpoint and the config, unless
    ``state_dict`` has exactly the keys and shapes of ``model``'s."""
    problems = state_dict_mismatch(model.state_dict(), state_dict)
    if problems:
        raise CheckpointMismatchError(
            f"checkpoint {ckpt} does not fit the {type(model).__name__} built from {config}; "
            "its weights are for another model or other settings (e.g. model.latent_dim, "
            "data.image_size):\n  " + "\n  ".join(problems) + "\nUse a checkpoint of this "
            "model, or the model settings the checkpoint was trained with."
        )


def check_resume_checkpoint(cfg: DictConfig, model: nn.Module) -> None:
    """Before training: ``cfg.ckpt_path`` (when it names a file) holds weights that fit
    ``model``. Lightning's own names (``last``, ``hpc``, ...) are left to Lightning."""
    ckpt = cfg.get("ckpt_path")
    if ckpt is None or ckpt in LIGHTNING_CKPT_NAMES:
        return
    config = f"this run's config (model._target_={cfg.model._target_})"
    check_state_dict(model, read_state_dict(ckpt), ckpt, config)


def load_model(cfg: DictConfig, ckpt: Path, device: str = "cpu") -> LightningModule:
    """Build ``cfg.model`` and load the checkpoint's weights (tensors only: weights_only=True);
    raise CheckpointMismatchError if they do not fit."""
    config = f"the run config {Path(cfg.paths.output_dir) / '.hydra' / 'config.yaml'}"
    problems = unimportable_targets(cfg.model, "model")
    if problems:
        raise ConfigError(
            f"{config} names code that cannot be imported here: {'; '.join(problems)}. The "
            "model is rebuilt from the run's saved config: make its module importable (install "
            "it, or add its folder to PYTHONPATH)"
        )
    model = instantiate(cfg.model)
    state_dict = read_state_dict(ckpt, device)
    check_state_dict(model, state_dict, ckpt, config)
    model.load_state_dict(state_dict)
    return model.to(device).eval()
