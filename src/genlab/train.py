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
from lightning.pytorch.utilities.model_helpers import is_overridden
from omegaconf import DictConfig, OmegaConf, open_dict

from genlab.callbacks import DivergenceError, PeriodicCheckpoint, SampleQuality, Throughput
from genlab.callbacks.resume import resolve_ckpt_path, saved_wandb_run_id
from genlab.config import CONFIG_DIR  # importing genlab.config registers the resolvers
from genlab.errors import user_errors_for_hydra
from genlab.modules.counters import counter_values
from genlab.runs import check_resume_checkpoint
from genlab.threads import configure_threads
from genlab.utils.io import atomic_write_json
from genlab.utils.summary import print_run_summary
from genlab.validation import ConfigError, validate_config

log = logging.getLogger(__name__)


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


def _continue_wandb_run(cfg: DictConfig) -> None:
    """Resuming: the W&B logger continues the run whose id the checkpoint holds."""
    wandb_cfg = (cfg.get("logger") or {}).get("wandb")
    if not cfg.get("ckpt_path") or wandb_cfg is None or not Path(cfg.ckpt_path).is_file():
        return
    run_id = saved_wandb_run_id(cfg.ckpt_path)
    if run_id is not None:
        with open_dict(cfg):
            wandb_cfg.id = run_id
            wandb_cfg.resume = "allow"


def _stop_signal(trainer: L.Trainer | None) -> str | None:
    callbacks = trainer.callbacks if trainer is not None else []
    return next((c.stop_signal for c in callbacks if isinstance(c, PeriodicCheckpoint)), None)


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
        if cfg.get("ckpt_path") is not None:  # ckpt_path=<run dir>: its checkpoints/last.ckpt
            with open_dict(cfg):
                cfg.ckpt_path = resolve_ckpt_path(cfg.ckpt_path)
        validate_config(cfg)  # bad values fail here, before anything is built
        record["threads"] = configure_threads(cfg.get("threads", "auto"), cfg.trainer)
        L.seed_everything(cfg.seed, workers=True)
        datamodule = instantiate(cfg.data)
        datamodule.prepare_data()  # missing data fails here, before any model is built
        datamodule.setup("fit")
        model = instantiate(cfg.model)
        check_resume_checkpoint(cfg, model)  # ckpt_path's weights fit this model
        _continue_wandb_run(cfg)
        callbacks = _instantiate_dict(cfg.get("callbacks"))
        loggers = _instantiate_dict(cfg.get("logger"))
        trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
        for logger in loggers:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        log.info("Training %s on %s", type(model).__name__, type(datamodule.source).__name__)
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
        record.update(_scalar_metrics(trainer))  # trainer.test() replaces callback_metrics
        if cfg.get("test") and is_overridden("test_step", model) and not trainer.interrupted:
            trainer.test(model, datamodule=datamodule)
        record["status"] = "interrupted" if trainer.interrupted else "completed"
    except DivergenceError as error:  # last.ckpt stays the last good one; a sweep moves on
        record["status"] = "diverged"
        record["diverged_at"] = {"step": error.step, "quantity": error.quantity}
        record["error"] = f"{type(error).__name__}: {error}"
    except (KeyboardInterrupt, SystemExit) as error:
        # SIGTERM or a first Ctrl-C: PeriodicCheckpoint saved last.ckpt at a step boundary and
        # Lightning raised SIGTERMException (exit code 0); Ctrl-C exits with 130 (128 + SIGINT)
        record["status"] = "interrupted"
        record["error"] = f"{type(error).__name__}: {error}"
        record["stop_signal"] = _stop_signal(trainer)
        if record["stop_signal"] == "SIGINT":
            raise SystemExit(130) from error
        raise
    except BaseException as error:
        record["error"] = f"{type(error).__name__}: {error}"
        raise
    finally:
        record["wall_time_s"] = round(time.perf_counter() - start, 3)
        if model is not None:
            record.update(counter_values(model, *getattr(model, "counter_names", ())))
        if trainer is not None:
            throughput = next((c for c in trainer.callbacks if isinstance(c, Throughput)), None)
            record["throughput_img_s"] = throughput.average_img_s if throughput else None
            record["epochs"] = trainer.current_epoch
            record.update(_scalar_metrics(trainer))
            for callback in trainer.callbacks:
                if isinstance(callback, SampleQuality):  # best/eval/*, best/at
                    record.update(callback.best_record())
        if trainer is None or trainer.is_global_zero:
            atomic_write_json(output_dir / "metrics.json", record)
        _finish_wandb(record["status"])
    if trainer.is_global_zero:
        print_run_summary(output_dir, record, trainer)
    return record


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns ``optimized_metric`` for sweepers. A user error (bad config,
    missing data, bad checkpoint) is printed as one message, without a traceback."""
    with user_errors_for_hydra():
        record = train(cfg)
        metric = cfg.get("optimized_metric")
        if metric and metric not in record and record["status"] == "diverged":
            return float("nan")  # the sweeper records a failed trial and goes on
        if metric and metric not in record:
            raise ConfigError(
                f"optimized_metric={metric!r} was not logged; logged metrics: "
                f"{sorted(k for k in record if '/' in k)}: pick one of them, or "
                "optimized_metric=null"
            )
        return record[metric] if metric else None


if __name__ == "__main__":
    main()
