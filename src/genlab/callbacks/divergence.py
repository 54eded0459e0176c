"""Stop a run the step a loss, a gradient, a parameter or a float buffer becomes NaN or Inf."""

from __future__ import annotations

from typing import Any

import torch
from lightning import Callback, LightningModule, Trainer
from torch import Tensor

from genlab.modules.counters import counter_values


class DivergenceError(RuntimeError):
    """Training produced a non-finite value; ``step`` (the counters after the bad step) and
    ``quantity`` (e.g. ``train/d_loss``, ``parameter generator.fc.0.weight``) say where."""

    def __init__(self, step: dict[str, int], quantity: str):
        self.step = step
        self.quantity = quantity
        where = ", ".join(f"{k}={v}" for k, v in step.items())
        super().__init__(f"non-finite {quantity} at {where}")


def _all_finite(tensors: list[Tensor]) -> bool:
    if not tensors:
        return True
    norms = torch._foreach_norm(tensors)  # one fused pass; a NaN / Inf anywhere makes its norm so
    return bool(torch.isfinite(torch.stack(norms)).all())


def first_non_finite(pl_module: LightningModule, metrics: dict[str, Any]) -> str | None:
    """The first non-finite logged train loss, parameter, gradient or float buffer, or None."""
    for key, value in sorted(metrics.items()):
        scalar = key.startswith("train/") and isinstance(value, Tensor) and value.numel() == 1
        if scalar and not torch.isfinite(value):
            return key
    named = {
        "parameter": [(n, p.detach()) for n, p in pl_module.named_parameters()],
        "gradient": [(n, p.grad) for n, p in pl_module.named_parameters() if p.grad is not None],
        "buffer": [(n, b) for n, b in pl_module.named_buffers() if b.is_floating_point()],
    }
    for what, pairs in named.items():
        if not _all_finite([t for _, t in pairs]):
            return next(f"{what} {n}" for n, t in pairs if not torch.isfinite(t).all())
    return None


class DivergenceGuard(Callback):
    """After every training batch: raise ``DivergenceError`` if a logged ``train/*`` scalar, a
    parameter, a gradient or a float buffer (EMA, batch-norm statistics, BEGAN's k_t) is NaN or
    Inf. Raising, rather than asking Lightning to stop, keeps every checkpoint callback from
    writing the bad weights: ``last.ckpt`` stays the last good one. genlab-train records
    ``status: diverged`` and moves on (a sweep continues with its next job)."""

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        quantity = first_non_finite(pl_module, dict(trainer.callback_metrics))
        # all ranks stop together
        bad = quantity is not None
        if trainer.world_size > 1 and trainer.strategy.reduce_boolean_decision(bad, all=False):
            quantity = quantity or "a value on another process"
        if quantity is not None:
            step = {"progress_steps": int(getattr(pl_module, "progress_steps", -1))}
            step.update(counter_values(pl_module, *getattr(pl_module, "counter_names", ())))
            step["global_step"] = trainer.global_step
            raise DivergenceError(step, quantity)
