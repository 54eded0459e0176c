"""Callbacks that tests plug into genlab-train runs (``+callbacks.x._target_=...``)."""

from __future__ import annotations

import os
import signal
from typing import Any

import torch
from lightning import Callback, LightningModule, Trainer


class KillAt(Callback):
    """SIGKILL this process in the middle of the first step after progress step ``step``
    (at its first optimizer step: after the backward pass, before the update)."""

    def __init__(self, step: int, sig: str = "SIGKILL"):
        self.step = step
        self.sig = getattr(signal, sig)

    def on_before_optimizer_step(self, trainer: Trainer, pl_module: LightningModule, opt) -> None:
        if pl_module.progress_steps >= self.step:
            os.kill(os.getpid(), self.sig)


class InjectNaN(Callback):
    """Set the first parameter of the module to NaN before training batch ``at_batch`` (0-based
    count of batches of this run)."""

    def __init__(self, at_batch: int):
        self.at_batch = at_batch
        self.seen = 0

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, *args: Any
    ) -> None:
        if self.seen == self.at_batch:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))
        self.seen += 1
