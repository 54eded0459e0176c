"""The CycleGAN reference's learning-rate rule: constant for n_epochs, then linear decay."""

import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR

from genlab.modules.schedules import LinearDecay, linear_decay_factor


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


def test_the_rule_drives_a_lambda_lr_scheduler_whose_checkpoint_keeps_it():
    a, b = torch.nn.Parameter(torch.zeros(())), torch.nn.Parameter(torch.zeros(()))
    optimizer = torch.optim.Adam([{"params": [a], "lr": 2e-4}, {"params": [b], "lr": 1e-3}])
    scheduler = LambdaLR(optimizer, LinearDecay(1, 3))
    lrs = [g["lr"] for g in optimizer.param_groups]
    for _ in range(4):
        scheduler.step()
        lrs += [g["lr"] for g in optimizer.param_groups]
    factors = [1.0, 0.75, 0.5, 0.25, 0.0]  # epochs 0 .. 4 of 1 + 3
    assert lrs == pytest.approx([lr * f for f in factors for lr in (2e-4, 1e-3)])
    # a restored scheduler continues from the checkpointed epoch with the checkpointed rule
    scheduler = LambdaLR(optimizer, LinearDecay(1, 3))
    scheduler.step()  # epoch 1
    state = (optimizer.state_dict(), scheduler.state_dict())
    restored_opt = torch.optim.Adam([{"params": [a], "lr": 9.0}, {"params": [b], "lr": 9.0}])
    restored = LambdaLR(restored_opt, LinearDecay(7, 7))
    restored_opt.load_state_dict(state[0])
    restored.load_state_dict(state[1])
    assert (restored.lr_lambdas[0].n_epochs, restored.lr_lambdas[0].n_epochs_decay) == (1, 3)
    restored.step()  # epoch 2
    assert [g["lr"] for g in restored_opt.param_groups] == pytest.approx([1e-4, 5e-4])
