"""Learning-rate rules of the image-to-image models (CycleGAN, pix2pix)."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def linear_decay_factor(epoch: int, n_epochs: int, n_epochs_decay: int) -> float:
    """The LR multiplier of 0-based training epoch ``epoch`` under the CycleGAN reference's
    rule: 1 for the first ``n_epochs`` epochs, then 1 - k / (n_epochs_decay + 1) in the k-th
    epoch after them (k = 1 .. n_epochs_decay), so the last epoch trains at
    1 / (n_epochs_decay + 1) and the next would at 0; never below 0."""
    return max(0.0, 1.0 - max(0, epoch + 1 - n_epochs) / (n_epochs_decay + 1))


def linear_decay(optimizer: Optimizer, n_epochs: int, n_epochs_decay: int) -> LambdaLR:
    """A LambdaLR applying ``linear_decay_factor``; step it once at the end of every epoch.
    Its position (``last_epoch``) is checkpointed; the rule itself comes from the config."""
    if n_epochs < 0 or n_epochs_decay < 0:
        raise ValueError(
            f"model.n_epochs={n_epochs} and model.n_epochs_decay={n_epochs_decay} must be >= 0"
        )

    def factor(epoch: int) -> float:
        return linear_decay_factor(epoch, n_epochs, n_epochs_decay)

    return LambdaLR(optimizer, factor)
