"""The CycleGAN reference's learning-rate rule: constant for n_epochs, then linear decay."""

import pytest
import torch

from genlab.modules.schedules import linear_decay_factor, scale_lr


@pytest.mark.parametrize(
    ("epoch", "factor"),
    [
        (0, 1.0),
        (99, 1.0),  # the last constant epoch (0-based)
        (100, 1 - 1 / 101),  # the first decay epoch
        (150, 1 - 51 / 101),
        (199, 1 / 101),  # the last epoch of the 100 + 100 schedule
        (200, 0.0),  # what would come next
        (250, 0.0),  # never negative
    ],
)
def test_the_paper_schedule_at_its_boundaries(epoch, factor):
    assert linear_decay_factor(epoch, 100, 100) == pytest.approx(factor, abs=1e-12)


def test_no_constant_or_no_decay_epochs():
    assert [linear_decay_factor(e, 0, 3) for e in range(4)] == pytest.approx([0.75, 0.5, 0.25, 0])
    assert [linear_decay_factor(e, 2, 0) for e in range(3)] == [1.0, 1.0, 0.0]


def test_scale_lr_scales_the_base_lr_of_every_group_and_checkpoints_it():
    a, b = torch.nn.Parameter(torch.zeros(())), torch.nn.Parameter(torch.zeros(()))
    optimizer = torch.optim.Adam([{"params": [a], "lr": 2e-4}, {"params": [b], "lr": 1e-3}])
    scale_lr(optimizer, 0.5)
    scale_lr(optimizer, 0.25)  # from the base lr, not the current one
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([5e-5, 2.5e-4])
    restored = torch.optim.Adam([{"params": [a], "lr": 9.0}, {"params": [b], "lr": 9.0}])
    restored.load_state_dict(optimizer.state_dict())
    scale_lr(restored, 1.0)
    assert [g["lr"] for g in restored.param_groups] == pytest.approx([2e-4, 1e-3])
