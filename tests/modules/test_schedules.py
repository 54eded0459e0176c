"""The CycleGAN reference's learning-rate rule: constant for n_epochs, then linear decay."""

import pytest
import torch

from genlab.modules.schedules import linear_decay, linear_decay_factor


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


def test_the_scheduler_follows_the_rule_when_stepped_per_epoch():
    param = torch.nn.Parameter(torch.zeros(()))
    optimizer = torch.optim.Adam([param], lr=2e-4)
    scheduler = linear_decay(optimizer, n_epochs=2, n_epochs_decay=3)
    lrs = []
    for _ in range(6):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    expected = [2e-4, 2e-4, 2e-4 * 3 / 4, 2e-4 * 2 / 4, 2e-4 * 1 / 4, 0.0]
    assert lrs == pytest.approx(expected, abs=1e-15)


def test_the_position_is_restored_from_a_state_dict():
    param = torch.nn.Parameter(torch.zeros(()))
    first = torch.optim.Adam([param], lr=1.0)
    scheduler = linear_decay(first, 1, 4)
    for _ in range(3):
        first.step()
        scheduler.step()
    second = torch.optim.Adam([param], lr=1.0)
    again = linear_decay(second, 1, 4)
    second.load_state_dict(first.state_dict())
    again.load_state_dict(scheduler.state_dict())
    assert second.param_groups[0]["lr"] == first.param_groups[0]["lr"] == pytest.approx(2 / 5)
    again.step()  # epoch 4: 1 - (4 + 1 - 1) / 5
    assert second.param_groups[0]["lr"] == pytest.approx(1 / 5)


def test_negative_epochs_are_refused():
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(()))])
    with pytest.raises(ValueError, match=r"model\.n_epochs=-1"):
        linear_decay(optimizer, -1, 3)
