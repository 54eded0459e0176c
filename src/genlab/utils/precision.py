"""Numbers that are reported are computed in float32, whatever precision training uses.

``hardware=gpu`` trains in bf16 mixed precision: Lightning runs ``training_step``,
``validation_step`` and ``test_step`` under ``torch.autocast``, where matrix products and
convolutions compute in bfloat16 (8 bits of mantissa, about 3 significant digits). That is fine
for gradients, but a likelihood, an ELBO or a sample metric reported from it would depend on the
hardware setting. ``full_precision()`` turns autocast off, as a context manager or a decorator.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def full_precision() -> Iterator[None]:
    """Autocast off (CPU and, when present, CUDA) inside: float32 weights and inputs compute in
    float32 even when the caller runs under mixed precision. Usable as ``@full_precision()``."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.autocast("cpu", enabled=False))
        if torch.cuda.is_available():
            stack.enter_context(torch.autocast("cuda", enabled=False))
        yield
