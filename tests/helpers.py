"""Composing the genlab config tree in tests, the way genlab-train does."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from genlab.train import CONFIG_DIR


def compose_train_config(
    overrides: list[str], output_dir: Path | None = None, search_path: list[Path] = ()
) -> DictConfig:
    """The composed root config with Hydra's runtime info set, so ${hydra:...} resolves;
    ``search_path``: more config directories (as genlab-train's --config-dir adds one)."""
    GlobalHydra.instance().clear()
    if search_path:
        entries = ",".join(f"file://{Path(d).resolve()}" for d in search_path)
        overrides = [*overrides, f"hydra.searchpath=[{entries}]"]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]  # as in a real run: the job's config has no hydra node
        if output_dir is not None:
            cfg.paths.output_dir = str(output_dir)
    return cfg


def group_options(group: str) -> list[str]:
    """Names of every option in a config group, e.g. group_options('model')."""
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))
