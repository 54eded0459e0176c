"""Reading a finished run back: its saved config, its model with checkpoint weights."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import instantiate
from lightning import LightningModule
from omegaconf import DictConfig, OmegaConf, open_dict

import genlab.config  # noqa: F401  (registers resolvers)


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


def checkpoint_path(run_dir: str | Path, ckpt: str | Path | None = None) -> Path:
    path = Path(ckpt) if ckpt else Path(run_dir) / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found; pass another with --ckpt")
    return path


def load_model(cfg: DictConfig, ckpt: Path, device: str = "cpu") -> LightningModule:
    """Build ``cfg.model`` and load the checkpoint's weights (tensors only: weights_only=True)."""
    model = instantiate(cfg.model)
    state = torch.load(ckpt, map_location=device, weights_only=True)
    try:
        model.load_state_dict(state["state_dict"])
    except (KeyError, RuntimeError) as error:
        raise RuntimeError(
            f"checkpoint {ckpt} does not fit the run's model {cfg.model._target_}: {error}"
        ) from error
    return model.to(device).eval()
