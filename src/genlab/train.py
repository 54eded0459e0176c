"""``genlab-train``: build data, model, callbacks, loggers and trainer from the Hydra config,
train, test, and write ``metrics.json`` in the run directory.

    genlab-train                                  # the quickstart experiment
    genlab-train experiment=vae_mnist GENLAB_DATA=...
    genlab-train -m model.latent_dim=8,16,32 seed=0,1,2
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import wandb
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import genlab.config  # noqa: F401  (registers resolvers)
from genlab.callbacks import Throughput
from genlab.utils.io import atomic_write_json
from genlab.utils.summary import print_run_summary

log = logging.getLogger(__name__)

# The config tree lives at the repository root (conf/); genlab is installed editable from it.
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def _instantiate_dict(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a config group that is a dict of ``_target_`` configs."""
    if not group:
        return []
    return [instantiate(c) for c in group.values() if c is not None and "_target_" in c]


def _scalar_metrics(trainer: L.Trainer) -> dict[str, float]:
    """The logged scalars (the counters are recorded separately, as ints)."""
    return {
        k: float(v)
        for k, v in sorted(trainer.callback_metrics.items())
        if v.numel() == 1 and not k.startswith("counters/")
    }


def _finish_wandb(status: str) -> None:
    """Close this process's W&B run so its files are complete (and the next sweep job gets a
    new run)."""
    if wandb.run is not None:
        wandb.finish(exit_code=0 if status == "completed" else 1)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one training job; returns the dict written to ``metrics.json``."""
    output_dir = Path(cfg.paths.output_dir)
    start = time.perf_counter()
    record: dict[str, Any] = {
        "status": "failed",
        "name": cfg.name,
        "model": cfg.model._target_.rsplit(".", 1)[-1],
        "seed": cfg.seed,
    }
    trainer = model = None
    try:
        L.seed_everything(cfg.seed, workers=True)
        datamodule = instantiate(cfg.data)
        datamodule.prepare_data()  # missing data fails here, before any model is built
        datamodule.setup("fit")
        model = instantiate(cfg.model)
        callbacks = _instantiate_dict(cfg.get("callbacks"))
        loggers = _instantiate_dict(cfg.get("logger"))
        trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
        for logger in loggers:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        log.info("Training %s on %s", type(model).__name__, type(datamodule.source).__name__)
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        record.update(_scalar_metrics(trainer))  # trainer.test() replaces callback_metrics
        if cfg.get("test") and not trainer.interrupted:
            trainer.test(model, datamodule=datamodule)
        record["status"] = "interrupted" if trainer.interrupted else "completed"
    except (KeyboardInterrupt, SystemExit) as error:  # Ctrl-C: Lightning exits after cleanup
        record["status"] = "interrupted"
        record["error"] = f"{type(error).__name__}: {error}"
        raise
    except BaseException as error:
        record["error"] = f"{type(error).__name__}: {error}"
        raise
    finally:
        record["wall_time_s"] = round(time.perf_counter() - start, 3)
        if model is not None and hasattr(model, "images_seen"):
            record["images_seen"] = int(model.images_seen)
            record["train_steps"] = int(getattr(model, "train_steps", 0))
        if trainer is not None:
            throughput = next((c for c in trainer.callbacks if isinstance(c, Throughput)), None)
            record["throughput_img_s"] = throughput.average_img_s if throughput else None
            record["epochs"] = trainer.current_epoch
            record.update(_scalar_metrics(trainer))
        if trainer is None or trainer.is_global_zero:
            atomic_write_json(output_dir / "metrics.json", record)
        _finish_wandb(record["status"])
    if trainer.is_global_zero:
        print_run_summary(output_dir, record, trainer)
    return record


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns ``optimized_metric`` for sweepers."""
    record = train(cfg)
    metric = cfg.get("optimized_metric")
    if metric and metric not in record:
        raise KeyError(
            f"optimized_metric={metric!r} was not logged; logged metrics: "
            f"{sorted(k for k in record if '/' in k)}"
        )
    return record[metric] if metric else None


if __name__ == "__main__":
    main()
