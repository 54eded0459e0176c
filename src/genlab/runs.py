"""Reading a finished run back: its saved config, its model with checkpoint weights."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from lightning import LightningModule
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import Tensor, nn

import genlab.config  # noqa: F401  (registers resolvers)
from genlab.validation import LIGHTNING_CKPT_NAMES


class CheckpointError(ValueError):
    """A checkpoint file cannot be read as a genlab (Lightning) checkpoint."""


class CheckpointMismatchError(ValueError):
    """A checkpoint's weights do not fit the model built from a config."""


def load_run_config(run_dir: str | Path) -> DictConfig:
    """The run's saved config (``.hydra/config.yaml``) with ``paths.output_dir`` = run_dir."""
    run_dir = Path(run_dir)
    path = run_dir / ".hydra" / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: RUN_DIR must be a genlab-train run directory "
            "(outputs/runs/<date>/<time>_<name> or a multirun job folder)"
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
        raise FileNotFoundError(
            f"checkpoint {path} not found: the run kept no best model, as it did not evaluate "
            "sample quality during training (callbacks.sample_quality.every_n_epochs or "
            "every_n_steps > 0); use --ckpt last or a checkpoint path"
        )
    raise FileNotFoundError(f"checkpoint {path} not found; pass another with --ckpt")


def read_state_dict(ckpt: str | Path, device: str = "cpu") -> dict[str, Tensor]:
    """The ``state_dict`` of a Lightning checkpoint, loaded with weights_only=True (tensors and
    plain data only: no code from the pickle runs)."""
    try:
        state = torch.load(ckpt, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:  # torch's weights-only unpickler refused an object
        lines = [line for line in str(error).splitlines() if "GLOBAL" in line]
        raise CheckpointError(
            f"checkpoint {ckpt} holds objects other than tensors and plain data, which genlab "
            f"does not load (unpickling them could run code): {' '.join(lines) or error}"
        ) from error
    except (OSError, EOFError, RuntimeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(
            f"checkpoint {ckpt} cannot be read ({type(error).__name__}: {reason}): it is "
            "truncated, corrupt or not a checkpoint written by genlab-train"
        ) from error
    if not isinstance(state, Mapping) or not isinstance(state.get("state_dict"), Mapping):
        raise CheckpointError(
            f"checkpoint {ckpt} has no 'state_dict': it is not a checkpoint written by "
            "genlab-train (Lightning)"
        )
    return dict(state["state_dict"])


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
    model = instantiate(cfg.model)
    state_dict = read_state_dict(ckpt, device)
    config = f"the run config {Path(cfg.paths.output_dir) / '.hydra' / 'config.yaml'}"
    check_state_dict(model, state_dict, ckpt, config)
    model.load_state_dict(state_dict)
    return model.to(device).eval()
