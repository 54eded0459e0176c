"""Learning-rate rules of the image-to-image models (CycleGAN, pix2pix).

The LR of an epoch is a function of the epoch's index only, set before every training step: a
resumed run trains every epoch at the LR the uninterrupted run used, wherever in an epoch (or at
its very end) its checkpoint was taken, as no per-epoch step count has to survive the restart.
"""

from __future__ import annotations

from torch.optim import Optimizer


def linear_decay_factor(epoch: int, n_epochs: int, n_epochs_decay: int) -> float:
    """The LR multiplier of 0-based training epoch ``epoch`` under the CycleGAN reference's
    rule: 1 for the first ``n_epochs`` epochs, then 1 - k / (n_epochs_decay + 1) in the k-th
    epoch after them (k = 1 .. n_epochs_decay), so the last epoch trains at
    1 / (n_epochs_decay + 1) and the next would at 0; never below 0. Both counts are >= 0."""
    return max(0.0, 1.0 - max(0, epoch + 1 - n_epochs) / (n_epochs_decay + 1))


def scale_lr(optimizer: Optimizer, factor: float) -> None:
    """Set every param group's lr to its base lr times ``factor``. The base lr is the group's lr
    at the first call, kept in the group as ``base_lr`` (so checkpointed with the optimizer)."""
    for group in optimizer.param_groups:
        group.setdefault("base_lr", group["lr"])
        group["lr"] = group["base_lr"] * factor
