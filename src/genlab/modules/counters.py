"""Work counters kept as module buffers, so they are checkpointed and restored on resume."""

from __future__ import annotations

import torch
from torch import nn


def register_counters(module: nn.Module, *names: str) -> None:
    """Add int64 scalar buffers ``names`` (e.g. images_seen, train_steps) starting at 0; their
    names are kept in ``module.counter_names`` (metrics.json records them)."""
    module.counter_names = names
    for name in names:
        module.register_buffer(name, torch.zeros((), dtype=torch.long))


def counter_values(module: nn.Module, *names: str) -> dict[str, int]:
    """The counters as plain ints, e.g. for logging or metrics.json."""
    return {name: int(getattr(module, name)) for name in names}
