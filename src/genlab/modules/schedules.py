"""Learning-rate rules of the image-to-image models (CycleGAN, pix2pix).

A rule is an LR multiplier of the 0-based epoch index, for ``torch.optim.lr_scheduler.LambdaLR``
(a per-epoch scheduler stepped with ``genlab.modules.adversarial.step_epoch_schedulers``). Rules
are callable objects, not functions, so that the scheduler's checkpoint holds their settings.
"""

from __future__ import annotations


def linear_decay_factor(epoch: int, n_epochs: int, n_epochs_decay: int) -> float:
    """The LR multiplier of 0-based training epoch ``epoch`` under the CycleGAN reference's
    rule: 1 for the first ``n_epochs`` epochs, then 1 - k / (n_epochs_decay + 1) in the k-th
    epoch after them (k = 1 .. n_epochs_decay), so the last epoch trains at
    1 / (n_epochs_decay + 1) and the next would at 0; never below 0. Both counts are >= 0."""
    return max(0.0, 1.0 - max(0, epoch + 1 - n_epochs) / (n_epochs_decay + 1))


class LinearDecay:
    """``linear_decay_factor(epoch, n_epochs, n_epochs_decay)`` as a ``LambdaLR`` rule."""

    def __init__(self, n_epochs: int, n_epochs_decay: int):
        self.n_epochs = n_epochs
        self.n_epochs_decay = n_epochs_decay

    def __call__(self, epoch: int) -> float:
        return linear_decay_factor(epoch, self.n_epochs, self.n_epochs_decay)
