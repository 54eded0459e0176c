"""The shared GAN machinery: the update shape, per-critic objectives, EMA and its batch-norm
statistics, optimizer configs."""

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from genlab.modules.adversarial import (
    choose_critic,
    ema_update,
    make_ema,
    objective_per_critic,
    optimizer_config,
    recompute_batch_norm,
    step_epoch_schedulers,
    toggled_update,
)
from genlab.nets.lucic import LucicAutoencoder, LucicDiscriminator
from genlab.objectives.gan import BEGAN, WGAN, NonSaturating


class TwoNets(L.LightningModule):
    """Two linear nets, one optimizer each; ``body`` decides what one update does."""

    def __init__(self, body):
        super().__init__()
        self.automatic_optimization = False
        self.a, self.b = nn.Linear(2, 1), nn.Linear(2, 1)
        self.body = body
        self.seen: list[dict] = []

    def training_step(self, batch, batch_idx):
        x, _ = batch
        opt_a, _ = self.optimizers()
        before = {k: v.detach().clone() for k, v in self.state_dict().items()}
        self.body(self, opt_a, x)
        after = self.state_dict()
        self.seen.append({k: not torch.equal(v, after[k]) for k, v in before.items()})

    def configure_optimizers(self):
        return [torch.optim.SGD(self.a.parameters(), lr=0.1), torch.optim.SGD(self.b.parameters())]


def run_one_step(body) -> TwoNets:
    module = TwoNets(body)
    loader = DataLoader(TensorDataset(torch.randn(4, 2), torch.zeros(4)), batch_size=4)
    L.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    ).fit(module, loader)
    return module


def test_an_update_moves_only_the_toggled_optimizers_net():
    def body(module, opt, x):
        with toggled_update(module, opt, grad_clip_val=1.0) as step:
            assert not any(p.requires_grad for p in module.b.parameters())
            step((module.a(x) + module.b(x)).pow(2).mean())  # b's output is used, not trained
        assert all(p.requires_grad for p in module.b.parameters())  # untoggled afterwards

    changed = run_one_step(body).seen[0]
    assert changed == {"a.weight": True, "a.bias": True, "b.weight": False, "b.bias": False}


@pytest.mark.parametrize("calls", [0, 2])
def test_an_update_makes_exactly_one_step(calls):
    def body(module, opt, x):
        with toggled_update(module, opt) as step:
            for _ in range(calls):
                step(module.a(x).pow(2).mean())

    with pytest.raises(RuntimeError, match="step"):
        run_one_step(body)


def test_each_critic_gets_its_own_objective_state():
    objectives = objective_per_critic(BEGAN(gamma=0.5, lambda_k=0.1), ["A", "B"])
    objectives["A"].d_loss(torch.tensor([0.4]), torch.tensor([0.1]))
    objectives["A"].after_d_step(nn.Identity())
    assert objectives["A"].k.item() == pytest.approx(0.1 * (0.5 * 0.4 - 0.1))
    assert objectives["B"].k.item() == 0.0
    assert set(objectives.state_dict()) == {"A.k", "A.convergence", "B.k", "B.convergence"}
    clipping = objective_per_critic(WGAN(clip_value=0.01), ["A", "B"])
    critics = {name: nn.Linear(3, 1) for name in "AB"}
    nn.init.constant_(critics["B"].weight, 5.0)
    clipping["A"].after_d_step(critics["A"])
    assert critics["A"].weight.abs().max() <= 0.01 and critics["B"].weight.min() == 5.0


def test_the_objective_chooses_the_critic_it_needs():
    assert choose_critic(NonSaturating(), LucicDiscriminator, LucicAutoencoder) is (
        LucicDiscriminator
    )
    assert choose_critic(BEGAN(), LucicDiscriminator, LucicAutoencoder) is LucicAutoencoder
    with pytest.raises(ValueError, match=r"BEGAN needs an autoencoder critic.*model\.autoencoder"):
        choose_critic(BEGAN(), LucicDiscriminator, None)


class WithBuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear, self.norm = nn.Linear(3, 3), nn.BatchNorm1d(3)
        self.register_buffer("step_count", torch.zeros(()))


def test_ema_update_averages_weights_copies_buffers_but_not_batch_norm_statistics():
    model = WithBuffer()
    average = make_ema(model)
    assert not any(p.requires_grad for p in average.parameters())
    nn.init.constant_(average.linear.weight, 2.0)
    nn.init.constant_(model.linear.weight, 4.0)
    model.norm.running_mean.fill_(0.7)
    model.step_count.fill_(3)
    ema_update(average, model, decay=0.9)
    torch.testing.assert_close(average.linear.weight, torch.full((3, 3), 0.9 * 2.0 + 0.1 * 4.0))
    assert average.step_count.item() == 3  # an ordinary buffer follows the model
    assert torch.equal(average.norm.running_mean, torch.zeros(3))  # set by recompute_batch_norm


def test_recomputed_batch_norm_statistics_are_those_of_the_given_batches():
    """Hand computation on a fixed batch: each layer's input, with earlier layers normalising by
    batch statistics (train mode), gives the running mean and unbiased variance; two batches
    give the average of their statistics (momentum None), whatever the momentum was."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, momentum=0.3), nn.ReLU())
    net.append(nn.Linear(4, 2)).append(nn.BatchNorm1d(2))
    net[1].weight.data.uniform_(0.5, 2.0)
    net.eval()
    z1, z2 = torch.randn(16, 3), torch.randn(16, 3)

    def input_statistics(z):
        h1 = net[0](z)  # (16, 4)
        normed = (h1 - h1.mean(0)) / (h1.var(0, unbiased=False) + net[1].eps).sqrt()
        h2 = net[3](torch.relu(normed * net[1].weight + net[1].bias))  # (16, 2)
        return [(h1.mean(0), h1.var(0)), (h2.mean(0), h2.var(0))]

    with torch.no_grad():
        one, two = input_statistics(z1), input_statistics(z2)
    recompute_batch_norm(net, [(z1,)])
    for layer, (mean, var) in zip((net[1], net[4]), one, strict=True):
        torch.testing.assert_close(layer.running_mean, mean)
        torch.testing.assert_close(layer.running_var, var)
    recompute_batch_norm(net, [(z1,), (z2,)])
    for layer, a, b in zip((net[1], net[4]), one, two, strict=True):
        torch.testing.assert_close(layer.running_mean, (a[0] + b[0]) / 2)
        torch.testing.assert_close(layer.running_var, (a[1] + b[1]) / 2)
        assert int(layer.num_batches_tracked) == 2
    assert (net[1].momentum, net[4].momentum) == (0.3, 0.1) and not net.training


def test_optimizer_config_applies_overrides_and_a_scheduler():
    net = nn.Linear(2, 2)
    config = optimizer_config(
        lambda params, **kw: torch.optim.Adam(params, **kw),
        net.parameters(),
        {"lr": 0.5},
        lambda optimizer: torch.optim.lr_scheduler.StepLR(optimizer, step_size=1),
    )
    assert config["optimizer"].param_groups[0]["lr"] == 0.5
    assert config["lr_scheduler"].optimizer is config["optimizer"]


def test_epoch_schedulers_are_stepped_to_the_epochs_done_and_no_further():
    """Stepped once per finished epoch, whatever the calls: at an epoch's end (epochs_done =
    current_epoch + 1) and, catching up after a resume, before a step (current_epoch)."""
    net = nn.Linear(2, 2)
    optimizers = [torch.optim.SGD(net.parameters(), lr=1.0) for _ in range(2)]
    schedulers = [torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.5) for o in optimizers]
    schedulers[1].step()  # one restored from a later point: already at epoch 1

    class Module:
        def lr_schedulers(self):
            return schedulers

    step_epoch_schedulers(Module(), 2)
    step_epoch_schedulers(Module(), 2)  # already there: no step
    step_epoch_schedulers(Module(), 1)  # behind the target never steps back
    assert [s.last_epoch for s in schedulers] == [2, 2]
    assert [o.param_groups[0]["lr"] for o in optimizers] == [0.25, 0.25]
