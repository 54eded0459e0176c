"""Evaluates sample quality during and at the end of training, as ``eval/*`` metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from lightning import Callback, LightningModule, Trainer
from omegaconf import DictConfig

from genlab.callbacks.pictures import log_image
from genlab.metrics.evaluate import (
    EvalSettings,
    LoadedSplits,
    dataset_key,
    evaluate_samples,
    settings_from_config,
)
from genlab.metrics.extractors import FeatureExtractor
from genlab.utils.images import make_grid, save_png


class SampleQuality(Callback):
    """Every ``every_n_steps`` training steps (the module's ``progress_steps``, e.g. generator
    updates for a GAN; 0: never) and, with ``at_end``, when training ends:
    FID / KID / IS / precision-recall / density-coverage / memorization of the model's samples,
    sent to the loggers and to ``metrics.json`` as ``eval/<name>``."""

    def __init__(
        self,
        eval_cfg: DictConfig,
        data_cfg: DictConfig,
        cache_dir: str,
        every_n_steps: int = 0,
        at_end: bool = False,
    ):
        if every_n_steps < 0:
            raise ValueError(
                f"callbacks.sample_quality.every_n_steps={every_n_steps} must be >= 0 (0: never)"
            )
        self.eval_cfg = eval_cfg
        self.data_cfg = data_cfg
        self.cache_dir = cache_dir
        self.every_n_steps = every_n_steps
        self.at_end = at_end
        self.settings: EvalSettings = settings_from_config(eval_cfg)
        self._extractor: FeatureExtractor | None = None
        self._splits: LoadedSplits | None = None
        self._last_step = -1

    def _source(self, trainer: Trainer) -> LoadedSplits:
        """The data source with its splits loaded once for every evaluation of this run."""
        if self._splits is None:
            self._splits = LoadedSplits(trainer.datamodule.source)
        return self._splits

    def _extractor_for(self, trainer: Trainer) -> FeatureExtractor:
        """Built once; under DDP rank 0 builds (and, if need be, trains and caches) it first,
        then the other ranks load it from the cache."""
        if self._extractor is None:
            build = instantiate(self.eval_cfg.extractor)
            kwargs = {
                "source": self._source(trainer),
                "dataset_key": dataset_key(self.data_cfg),
                "num_classes": self.data_cfg.num_classes,
                "cache_dir": self.cache_dir,
            }
            if trainer.is_global_zero:
                self._extractor = build(**kwargs)
            trainer.strategy.barrier("sample_quality_extractor")
            if not trainer.is_global_zero:
                self._extractor = build(**kwargs)
        return self._extractor

    def evaluate(self, trainer: Trainer, module: LightningModule) -> dict[str, float]:
        was_training = module.training
        module.eval()
        metrics, pairs = evaluate_samples(
            module,
            self._source(trainer),
            self.data_cfg,
            self._extractor_for(trainer),
            self.settings,
            self.cache_dir,
            rank=trainer.global_rank,
            world_size=trainer.world_size,
        )
        module.train(was_training)
        metrics = {f"eval/{k}": v for k, v in metrics.items()}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in metrics.items()})
        if trainer.is_global_zero:
            path = Path(trainer.default_root_dir) / "samples" / "nearest_neighbours.png"
            grid = make_grid(pairs.images, pairs.nrow)
            save_png(path, grid, scale=2)
            for logger in trainer.loggers:
                log_image(logger, "pictures/nearest_neighbours", grid, step=trainer.global_step)
        return metrics

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = int(getattr(pl_module, "progress_steps", trainer.global_step))
        due = self.every_n_steps and step > 0 and step % self.every_n_steps == 0
        if due and step != self._last_step:  # a GAN makes n_critic batches per G step
            self._last_step = step
            self.evaluate(trainer, pl_module)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.at_end:
            self.evaluate(trainer, pl_module)
