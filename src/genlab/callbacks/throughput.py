"""Measures training throughput in real images per second (all processes together)."""

from __future__ import annotations

import time
from typing import Any

from lightning import Callback, LightningModule, Trainer


class Throughput(Callback):
    """Times each training batch (data loading excluded, optimisation included) and logs
    ``perf/throughput_img_s``, the images per second over the last ``window`` batches.
    ``average_img_s`` is the figure over the whole run, after ``warmup_batches``."""

    def __init__(self, window: int = 50, warmup_batches: int = 5):
        self.window = window
        self.warmup_batches = warmup_batches
        self._start = 0.0
        self._batches = 0
        self._recent: list[tuple[int, float]] = []
        self.total_images = 0
        self.total_seconds = 0.0

    @property
    def average_img_s(self) -> float | None:
        return self.total_images / self.total_seconds if self.total_seconds > 0 else None

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        seconds = time.perf_counter() - self._start
        images = batch[0].shape[0] * trainer.world_size
        self._batches += 1
        if self._batches > self.warmup_batches:
            self.total_images += images
            self.total_seconds += seconds
        self._recent = [*self._recent[-(self.window - 1) :], (images, seconds)]
        recent_images = sum(n for n, _ in self._recent)
        recent_seconds = sum(s for _, s in self._recent)
        pl_module.log("perf/throughput_img_s", recent_images / recent_seconds, prog_bar=True)
