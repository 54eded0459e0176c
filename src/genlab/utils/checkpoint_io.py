"""Lightning checkpoints written atomically: a temp file beside the target, fsync, rename."""

from __future__ import annotations

import io
from typing import Any

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins import TorchCheckpointIO

from genlab.utils.io import atomic_write_bytes


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO whose local writes go through ``atomic_write_bytes``.

    Lightning 2.6 (``lightning.fabric.utilities.cloud_io._atomic_save``) writes through an
    fsspec transaction: the file is staged in the system temp folder, without fsync, and moved
    into place. When that folder is on another file system than the run directory (a tmpfs
    /tmp, a node-local disk beside a network share) the move is a copy, and a crash during it
    leaves a partial ``last.ckpt``. Remote paths (``s3://...``) keep Lightning's own writer.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(path, buffer.getvalue())
