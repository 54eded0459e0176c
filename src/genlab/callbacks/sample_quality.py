"""Evaluates sample quality during and at the end of training, as ``eval/*`` metrics, and keeps
the best evaluation of the run (``best/*`` keys and ``checkpoints/best.ckpt``)."""

from __future__ import annotations

import logging
import math
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
from genlab.metrics.extractors import FeatureExtractor, domain_evaluator
from genlab.metrics.translation import evaluate_translation
from genlab.modules.counters import counter_values
from genlab.utils.images import make_grid, save_png
from genlab.utils.io import atomic_write_bytes

log = logging.getLogger(__name__)


class SampleQuality(Callback):
    """FID / KID / IS / precision-recall / density-coverage / memorization of the model's
    samples, sent to the loggers and to ``metrics.json`` as ``eval/<name>``: every
    ``every_n_steps`` training steps (the module's ``progress_steps``, e.g. generator updates for
    a GAN), every ``every_n_epochs`` epochs (at the epoch's end; 0 turns either off) and, with
    ``at_end``, when training ends (unless the last evaluation saw the final weights already).

    Best of run: when it evaluates during training (``every_n_steps`` or ``every_n_epochs``),
    the evaluation with the lowest FID is kept as ``best``: its ``eval/*`` metrics and where it
    was reached (``at``: epochs completed and the module's counters), written to
    ``metrics.json`` as ``best/eval/<name>`` and ``best/at`` (see ``best_record``), and the model
    as ``<dirpath>/best.ckpt`` (a full checkpoint, written atomically by rank 0). The best is
    part of this callback's checkpointed state: a resumed run keeps it, and copies the previous
    run's best.ckpt into its own ``dirpath``.
    """

    def __init__(
        self,
        eval_cfg: DictConfig,
        data_cfg: DictConfig,
        cache_dir: str,
        every_n_steps: int = 0,
        every_n_epochs: int = 0,
        at_end: bool = False,
        dirpath: str | None = None,
    ):
        for name, value in (("every_n_steps", every_n_steps), ("every_n_epochs", every_n_epochs)):
            if value < 0:
                raise ValueError(
                    f"callbacks.sample_quality.{name}={value} is invalid: must be >= 0 (0: never)"
                )
        self.eval_cfg = eval_cfg
        self.data_cfg = data_cfg
        self.cache_dir = cache_dir
        self.every_n_steps = every_n_steps
        self.every_n_epochs = every_n_epochs
        self.at_end = at_end
        self.best_path = Path(dirpath) / "best.ckpt" if dirpath is not None else None
        self.settings: EvalSettings = settings_from_config(eval_cfg)
        self.best: dict[str, Any] | None = None  # {"metrics", "at", "ckpt"}, see _keep_if_best
        self._extractor: FeatureExtractor | None = None
        self._classifier: FeatureExtractor | None = None
        self._splits: LoadedSplits | None = None
        self._last_step = -1
        self._evaluated_at: int | None = None  # trainer.global_step of the last evaluation

    @property
    def tracks_best(self) -> bool:
        """Whether the run evaluates during training, and so keeps its best evaluation."""
        return bool(self.every_n_steps or self.every_n_epochs)

    def _source(self, trainer: Trainer) -> LoadedSplits:
        """The data source with its splits loaded once for every evaluation of this run."""
        if self._splits is None:
            self._splits = LoadedSplits(trainer.datamodule.source)
        return self._splits

    def _built(self, trainer: Trainer, factory: Any) -> FeatureExtractor:
        """``factory(source, dataset_key, num_classes, cache_dir)``; under DDP rank 0 builds
        (and, if need be, trains and caches) it first, then the other ranks load the cache."""
        kwargs = {
            "source": self._source(trainer),
            "dataset_key": dataset_key(self.data_cfg),
            "num_classes": self.data_cfg.num_classes,
            "cache_dir": self.cache_dir,
        }
        built = factory(**kwargs) if trainer.is_global_zero else None
        trainer.strategy.barrier("sample_quality_extractor")
        return built if built is not None else factory(**kwargs)

    def _extractor_for(self, trainer: Trainer) -> FeatureExtractor:
        """The feature extractor of ``eval.extractor``, built once."""
        if self._extractor is None:
            self._extractor = self._built(trainer, instantiate(self.eval_cfg.extractor))
        return self._extractor

    def _classifier_for(self, trainer: Trainer) -> FeatureExtractor:
        """A classifier of the data set's labels (of the domains, for unpaired data): the
        extractor itself when it is one (the domain evaluator), else the cached domain
        evaluator with its default recipe. Built once."""
        if self._classifier is None:
            extractor = self._extractor_for(trainer)
            if getattr(extractor, "num_classes", None) == self.data_cfg.num_classes:
                self._classifier = extractor
            else:
                self._classifier = self._built(trainer, domain_evaluator)
        return self._classifier

    def _measure(self, trainer: Trainer, module: LightningModule) -> tuple[dict[str, float], Any]:
        """The metrics, and the picture of samples beside their nearest training images (None
        for a translation model, which is scored on the test split of both domains)."""
        rank, world = trainer.global_rank, trainer.world_size
        if callable(getattr(module, "translate", None)):
            metrics = evaluate_translation(
                module,
                trainer.datamodule.test_images,
                self._extractor_for(trainer),
                self._classifier_for(trainer),
                self.settings.quality,
                self.settings.batch_size,
                rank=rank,
                world_size=world,
            )
            return metrics, None
        return evaluate_samples(
            module,
            trainer.datamodule,
            dataset_key(self.data_cfg),
            self._extractor_for(trainer),
            self.settings,
            self.cache_dir,
            rank=rank,
            world_size=world,
        )

    def evaluate(
        self, trainer: Trainer, module: LightningModule, epochs_done: int | None = None
    ) -> dict[str, float]:
        """Evaluate now (every process must call it); ``epochs_done``: epochs completed, for
        ``best/at`` (default: ``trainer.current_epoch``)."""
        was_training = module.training
        module.eval()
        metrics, pairs = self._measure(trainer, module)
        module.train(was_training)
        self._evaluated_at = trainer.global_step
        step = int(getattr(module, "progress_steps", trainer.global_step))
        metrics = {f"eval/{k}": v for k, v in metrics.items()}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        values = {k: torch.tensor(v, dtype=torch.float64) for k, v in metrics.items()}
        trainer.callback_metrics.update(values)  # float64: metrics.json keeps every digit
        if trainer.is_global_zero and pairs is not None:
            path = Path(trainer.default_root_dir) / "samples" / "nearest_neighbours.png"
            grid = make_grid(pairs.images, pairs.nrow)
            save_png(path, grid, scale=2)
            for logger in trainer.loggers:
                log_image(logger, "pictures/nearest_neighbours", grid, step=trainer.global_step)
        epochs = trainer.current_epoch if epochs_done is None else epochs_done
        log.info(
            "sample quality after %d epochs, step %d: FID %.4g", epochs, step, metrics["eval/fid"]
        )
        if self.tracks_best:
            self._keep_if_best(trainer, module, metrics, epochs)
        return metrics

    def _keep_if_best(
        self, trainer: Trainer, module: LightningModule, metrics: dict[str, float], epochs: int
    ) -> None:
        fid = metrics["eval/fid"]
        better = math.isfinite(fid) and (
            self.best is None or fid < self.best["metrics"]["eval/fid"]
        )
        if bool(trainer.strategy.broadcast(better, src=0)):  # one decision: saving is collective
            counters = counter_values(module, *getattr(module, "counter_names", ()))
            at = {"epoch": int(epochs), **counters}
            ckpt = str(self.best_path) if self.best_path is not None else None
            self.best = {"metrics": dict(metrics), "at": at, "ckpt": ckpt}
            if self.best_path is not None:  # after self.best: the checkpoint holds it
                trainer.save_checkpoint(self.best_path)
        if self.best is not None:
            best_fid = {"best/eval/fid": self.best["metrics"]["eval/fid"]}
            for logger in trainer.loggers:
                logger.log_metrics(best_fid, step=trainer.global_step)

    def best_record(self) -> dict[str, Any]:
        """``best/eval/<name>`` for every metric of the best evaluation and ``best/at``
        (``{"epoch": ..., <counter>: ...}``) for ``metrics.json``; empty if there is none."""
        if self.best is None:
            return {}
        record: dict[str, Any] = {f"best/{k}": v for k, v in self.best["metrics"].items()}
        record["best/at"] = dict(self.best["at"])
        return record

    def _due(self, trainer: Trainer) -> bool:
        """Not evaluated yet at this point of training (the same weights are never scored twice,
        e.g. by an every_n_steps and an every_n_epochs evaluation, or at the end)."""
        return self._evaluated_at != trainer.global_step

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = int(getattr(pl_module, "progress_steps", trainer.global_step))
        due = self.every_n_steps and step > 0 and step % self.every_n_steps == 0
        if due and step != self._last_step and self._due(trainer):  # n_critic batches a G step
            self._last_step = step
            self.evaluate(trainer, pl_module)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epochs = trainer.current_epoch + 1  # this epoch included
        if self.every_n_epochs and epochs % self.every_n_epochs == 0 and self._due(trainer):
            self.evaluate(trainer, pl_module, epochs_done=epochs)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.at_end and self._due(trainer):
            self.evaluate(trainer, pl_module)

    # ---- resume ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "last_step": self._last_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = state_dict.get("best")
        self._last_step = int(state_dict.get("last_step", -1))

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """A resumed run in a new directory takes the previous run's best.ckpt along."""
        if self.best is None or self.best_path is None or self.best.get("ckpt") is None:
            return
        previous = Path(self.best["ckpt"])
        if previous.resolve() == self.best_path.resolve():
            return
        if trainer.is_global_zero:
            self._copy_best(previous)
        trainer.strategy.barrier("sample_quality_best")
        self.best["ckpt"] = str(self.best_path)

    def _copy_best(self, previous: Path) -> None:
        """Copy ``previous`` to ``best_path`` if it holds this best evaluation (a run killed
        after writing best.ckpt but before its last.ckpt may have a newer one), else warn."""
        held = None
        if previous.is_file():
            state = torch.load(previous, map_location="cpu", weights_only=True)
            held = ((state.get("callbacks") or {}).get(self.state_key) or {}).get("best")
        if held is not None and held.get("at") == self.best["at"]:
            atomic_write_bytes(self.best_path, previous.read_bytes())
            return
        log.warning(
            "the resumed run's best evaluation (%s) is not in %s: best/* keep its values, and "
            "%s is written at the next better evaluation",
            self.best["at"],
            previous,
            self.best_path,
        )
