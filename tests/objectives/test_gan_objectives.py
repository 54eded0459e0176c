"""The GAN objectives against Lucic et al.'s Table 1 (FORMULAS.md) on scores (B,) and PatchGAN
maps (B, 1, H, W), penalties on any critic callable, clipping, BEGAN, relativistic G losses."""

import math

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from genlab.objectives.gan import (
    BEGAN,
    DRAGAN,
    WGAN,
    WGANGP,
    GANObjective,
    NonSaturating,
    gradient_penalty,
)
from tests.helpers import compose_train_config, group_options

LOSSES = group_options("loss")


def objective(name: str) -> GANObjective:
    """The objective object exactly as ``loss=<name>`` configures it."""
    return instantiate(compose_train_config([f"loss={name}"]).loss.objective)


def softplus(t: float) -> float:
    return math.log1p(math.exp(t))


def sigmoid(t: float) -> float:
    return 1 / (1 + math.exp(-t))


REAL = [2.0, -0.5, 0.3]  # D outputs on real images
FAKE = [-1.0, 0.7, 0.1]  # D outputs on fakes


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


# (L_D, L_G) from FORMULAS.md, computed from the probabilities where the table has them
HAND = {
    "mm": (
        -mean(math.log(sigmoid(r)) for r in REAL) - mean(math.log(1 - sigmoid(f)) for f in FAKE),
        mean(math.log(1 - sigmoid(f)) for f in FAKE),
    ),
    "ns": (
        -mean(math.log(sigmoid(r)) for r in REAL) - mean(math.log(1 - sigmoid(f)) for f in FAKE),
        -mean(math.log(sigmoid(f)) for f in FAKE),
    ),
    "dragan": (
        mean(softplus(-r) for r in REAL) + mean(softplus(f) for f in FAKE),
        mean(softplus(-f) for f in FAKE),
    ),
    "ls": (
        mean((r - 1) ** 2 for r in REAL) + mean(f**2 for f in FAKE),
        mean((f - 1) ** 2 for f in FAKE),
    ),
    "wgan": (mean(FAKE) - mean(REAL), -mean(FAKE)),
    "wgan_gp": (mean(FAKE) - mean(REAL), -mean(FAKE)),
    "hinge": (
        mean(max(0, 1 - r) for r in REAL) + mean(max(0, 1 + f) for f in FAKE),
        -mean(FAKE),
    ),
    # BEGAN's D outputs are reconstruction errors L(v) >= 0; k_t starts at 0
    "began": (mean(abs(r) for r in REAL), mean(abs(f) for f in FAKE)),
}


def test_every_loss_option_has_a_hand_computed_value():
    assert set(HAND) == set(LOSSES)


@pytest.mark.parametrize("name", LOSSES)
def test_losses_equal_the_formula_on_fixed_outputs(name):
    obj = objective(name)
    real, fake = torch.tensor(REAL, dtype=torch.float64), torch.tensor(FAKE, dtype=torch.float64)
    if name == "began":
        real, fake = real.abs(), fake.abs()
    d_loss, g_loss = obj.d_loss(real, fake), obj.g_loss(fake)
    assert d_loss.shape == () and g_loss.shape == ()
    assert d_loss.item() == pytest.approx(HAND[name][0], rel=1e-12)
    assert g_loss.item() == pytest.approx(HAND[name][1], rel=1e-12)


# the same six outputs as PatchGAN maps (B, 1, H, W): the losses are means over all elements
REAL_MAPS = [[2.0, -0.5, 0.3], [0.9, 1.5, -2.0]]  # two images, each a 1 x 1 x 3 map
FAKE_MAPS = [[-1.0, 0.7, 0.1], [0.4, -0.3, 1.2]]


@pytest.mark.parametrize("name", LOSSES)
def test_losses_on_patchgan_maps_are_the_formula_over_every_element(name):
    obj = objective(name)
    real = torch.tensor(REAL_MAPS, dtype=torch.float64).view(2, 1, 1, 3)
    fake = torch.tensor(FAKE_MAPS, dtype=torch.float64).view(2, 1, 1, 3)
    if name == "began":
        real, fake = real.abs(), fake.abs()
    flat_real = [abs(v) if name == "began" else v for row in REAL_MAPS for v in row]
    flat_fake = [abs(v) if name == "began" else v for row in FAKE_MAPS for v in row]
    hand = hand_losses(name, flat_real, flat_fake)
    assert obj.d_loss(real, fake).item() == pytest.approx(hand[0], rel=1e-12)
    assert obj.g_loss(fake).item() == pytest.approx(hand[1], rel=1e-12)


def hand_losses(name: str, real: list[float], fake: list[float]) -> tuple[float, float]:
    """(L_D, L_G) of FORMULAS.md on lists of outputs (k_t = 0 for BEGAN)."""
    nsd = mean(softplus(-r) for r in real) + mean(softplus(f) for f in fake)
    return {
        "mm": (nsd, -mean(softplus(f) for f in fake)),
        "ns": (nsd, mean(softplus(-f) for f in fake)),
        "dragan": (nsd, mean(softplus(-f) for f in fake)),
        "ls": (
            mean((r - 1) ** 2 for r in real) + mean(f**2 for f in fake),
            mean((f - 1) ** 2 for f in fake),
        ),
        "wgan": (mean(fake) - mean(real), -mean(fake)),
        "wgan_gp": (mean(fake) - mean(real), -mean(fake)),
        "hinge": (
            mean(max(0, 1 - r) for r in real) + mean(max(0, 1 + f) for f in fake),
            -mean(fake),
        ),
        "began": (mean(real), mean(fake)),
    }[name]


@pytest.mark.parametrize("name", LOSSES)
def test_gradients_point_the_way_each_player_wants(name):
    """Inside every loss's margins (outputs between LSGAN's targets 0 and 1), D lowers its loss
    by scoring reals up and fakes down, G by scoring fakes up. BEGAN's outputs are
    reconstruction errors, so there every direction is reversed."""
    obj = objective(name)
    if name == "began":
        obj.k.fill_(0.5)
    sign = -1.0 if name == "began" else 1.0
    real = torch.tensor([0.5, 0.6], requires_grad=True)
    fake = torch.tensor([0.25, 0.2], requires_grad=True)
    d_real, d_fake = torch.autograd.grad(obj.d_loss(real, fake), (real, fake))
    (g_fake,) = torch.autograd.grad(obj.g_loss(fake), fake)
    assert torch.all(sign * d_real < 0) and torch.all(sign * d_fake > 0)
    assert torch.all(sign * g_fake < 0)
    big = torch.tensor([1e4, -1e4])  # no overflow at large logits
    assert torch.isfinite(obj.d_loss(big, -big)) and torch.isfinite(obj.g_loss(big))


@pytest.mark.parametrize("name", LOSSES)
def test_a_discriminator_that_separates_well_has_the_lower_loss(name):
    obj = objective(name)
    good, bad = torch.tensor([4.0, 5.0]), torch.tensor([-4.0, -5.0])
    if name == "began":  # a good autoencoder D: small error on reals, large on fakes
        obj.k.fill_(1.0)
        good, bad = torch.tensor([0.01, 0.02]), torch.tensor([0.9, 0.8])
    assert obj.d_loss(good, bad) < obj.d_loss(bad, good)


def test_minimax_saturates_where_the_non_saturating_loss_does_not():
    rejected = torch.tensor([-10.0]).requires_grad_()  # D is sure the fake is fake
    (mm,) = torch.autograd.grad(objective("mm").g_loss(rejected), rejected)
    (ns,) = torch.autograd.grad(objective("ns").g_loss(rejected), rejected)
    assert abs(mm.item()) < 1e-4 < 0.99 < abs(ns.item())


class LinearCritic(nn.Module):
    """f(x) = w . x over the flattened image: its input gradient is w everywhere."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w.flatten()


def test_gradient_penalty_of_a_linear_critic_is_its_norm_minus_one_squared():
    w = torch.randn(1, 4, 4, dtype=torch.float64)
    points = torch.randn(5, 1, 4, 4, dtype=torch.float64)
    penalty = gradient_penalty(LinearCritic(w), points)
    assert penalty.item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-12)


class PatchCritic(nn.Module):
    """A 1x1 convolution with weights w (C,): a (B, 1, H, W) map of w . x at every pixel. Its
    score (the map's mean) has input gradient w / (H W) at every pixel, of norm
    ||w|| / sqrt(H W) per sample."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("c,bchw->bhw", self.w, x)[:, None]  # (B, 1, H, W)


def test_gradient_penalty_of_a_patchgan_critic_takes_the_per_sample_norm_of_its_score():
    w = torch.tensor([3.0, 4.0], dtype=torch.float64)  # ||w|| = 5
    points = torch.randn(3, 2, 5, 5, dtype=torch.float64)  # H W = 25: gradient norm 5 / 5 = 1
    assert gradient_penalty(PatchCritic(w), points).item() == pytest.approx(0.0, abs=1e-12)
    points = torch.randn(3, 2, 2, 2, dtype=torch.float64)  # H W = 4: norm 5 / 2
    assert gradient_penalty(PatchCritic(w), points).item() == pytest.approx(1.5**2, rel=1e-12)


def test_gradient_penalty_works_on_a_conditional_critic_given_as_a_callable():
    """D(x, y) = w_y . x: the penalty of ``lambda x: D(x, y)`` is the mean over the batch of
    (||w_y|| - 1)^2, differentiated with respect to the images only."""
    weights = torch.tensor([[0.6, 0.8, 0.0, 0.0], [3.0, 0.0, 0.0, 4.0]], dtype=torch.float64)

    def conditional(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) * weights[y]).sum(1)  # (B,)

    y = torch.tensor([0, 1, 1])
    points = torch.randn(3, 1, 2, 2, dtype=torch.float64)
    penalty = gradient_penalty(lambda x: conditional(x, y), points)
    assert penalty.item() == pytest.approx((0 + 16 + 16) / 3, rel=1e-12)


class Relativistic(NonSaturating):
    """RpGAN-style pairing (FORMULAS.md): what a relativistic objective looks like."""

    relativistic = True

    def d_loss(self, real_out, fake_out):
        return torch.nn.functional.softplus(-(real_out - fake_out)).mean()

    def g_loss(self, fake_out, real_out=None):
        return torch.nn.functional.softplus(-(fake_out - real_out)).mean()


class CountingCritic(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([0.5, -1.0]))
        self.calls: list[torch.Tensor] = []

    def forward(self, x):
        self.calls.append(x)
        return x.flatten(1) @ self.w  # (B,)


def test_relativistic_generator_losses_see_d_on_the_real_batch_and_others_do_not():
    real, fake = torch.randn(4, 2, 1, 1), torch.randn(4, 2, 1, 1).requires_grad_()
    critic = CountingCritic()
    loss = Relativistic().generator_loss(critic, fake, real)
    real_out, fake_out = real.flatten(1) @ critic.w, fake.flatten(1) @ critic.w
    expected = torch.nn.functional.softplus(-(fake_out - real_out)).mean()
    torch.testing.assert_close(loss, expected)
    (grad,) = torch.autograd.grad(loss, critic.w)  # through D(x~) only: D(x) is a constant
    (only_fake,) = torch.autograd.grad(
        torch.nn.functional.softplus(-(fake_out - real_out.detach())).mean(), critic.w
    )
    torch.testing.assert_close(grad, only_fake)
    with pytest.raises(ValueError, match="real batch"):
        Relativistic().generator_loss(critic, fake)
    critic.calls.clear()
    NonSaturating().generator_loss(critic, fake, real)
    assert len(critic.calls) == 1 and critic.calls[0] is fake


def test_discriminator_loss_runs_the_critic_and_never_trains_the_generator():
    critic = CountingCritic()
    real, fake = torch.randn(4, 2, 1, 1), torch.randn(4, 2, 1, 1).requires_grad_()
    d_loss, penalty = WGANGP(penalty_weight=2.0).discriminator_loss(critic, real, fake)
    assert d_loss.item() == pytest.approx((critic(fake) - critic(real)).mean().item())
    assert penalty.item() == pytest.approx(2.0 * (critic.w.norm().item() - 1) ** 2, rel=1e-5)
    assert torch.autograd.grad(d_loss + penalty, fake, allow_unused=True) == (None,)


@pytest.mark.parametrize("cls", [WGANGP, DRAGAN])
def test_penalised_objectives_weight_the_shared_penalty(cls):
    w = torch.randn(1, 4, 4, dtype=torch.float64)
    critic = LinearCritic(w)
    real, fake = (
        torch.rand(6, 1, 4, 4, dtype=torch.float64),
        torch.rand(6, 1, 4, 4, dtype=torch.float64),
    )
    penalty = cls(penalty_weight=7.0).penalty(critic, real, fake)
    assert penalty.item() == pytest.approx(7.0 * (w.norm().item() - 1) ** 2, rel=1e-12)
    (grad,) = torch.autograd.grad(penalty, critic.w)  # the penalty trains the critic
    expected = 7.0 * 2 * (w.norm() - 1) * w / w.norm()
    torch.testing.assert_close(grad, expected)


class RecordingCritic(LinearCritic):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = x.detach().clone()
        return super().forward(x)


def test_wgan_gp_points_lie_between_real_and_fake():
    critic = RecordingCritic(torch.randn(1, 2, 2))
    real, fake = torch.zeros(64, 1, 2, 2), torch.ones(64, 1, 2, 2)
    WGANGP().penalty(critic, real, fake)
    e = critic.seen  # (B, 1, 2, 2): e * 0 + (1 - e) * 1 = 1 - e, one e per sample
    assert torch.all((e >= 0) & (e <= 1))
    assert torch.all(e == e[:, :1, :1, :1]) and e.flatten(1)[:, 0].std() > 0.1


def test_dragan_points_perturb_the_reals_by_half_their_std():
    critic = RecordingCritic(torch.randn(1, 2, 2))
    real = torch.randn(256, 1, 2, 2)
    DRAGAN().penalty(critic, real, real.flip(0))
    delta = (critic.seen - real) / (0.5 * real.std())  # u ~ U[0, 1)
    assert (
        delta.min() >= 0 and delta.max() < 1 and delta.mean().item() == pytest.approx(0.5, abs=0.05)
    )


def test_wgan_clips_every_discriminator_weight():
    critic = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 1))
    for p in critic.parameters():
        p.data.normal_(0, 1)
    WGAN(clip_value=0.01).after_d_step(critic)
    for p in critic.parameters():
        assert p.abs().max() <= 0.01
    assert any(p.abs().max() == 0.01 for p in critic.parameters())


def test_began_k_update_follows_its_equation():
    obj = BEGAN(gamma=0.5, lambda_k=0.1)
    obj.k.fill_(0.3)
    real, fake = torch.tensor([0.4, 0.6]), torch.tensor([0.1, 0.3])  # L(x) = 0.5, L(x~) = 0.2
    assert obj.d_loss(real, fake).item() == pytest.approx(0.5 - 0.3 * 0.2)
    obj.after_d_step(nn.Identity())
    assert obj.k.item() == pytest.approx(0.3 + 0.1 * (0.5 * 0.5 - 0.2))
    assert obj.convergence.item() == pytest.approx(0.5 + abs(0.5 * 0.5 - 0.2))
    obj.d_loss(real, torch.tensor([50.0, 50.0]))  # a huge fake loss drives k below 0: clamped
    obj.after_d_step(nn.Identity())
    assert obj.k.item() == 0.0
    obj.d_loss(torch.tensor([50.0, 50.0]), fake)
    obj.after_d_step(nn.Identity())
    assert obj.k.item() == 1.0
    assert set(obj.state_dict()) == {"k", "convergence"}  # checkpointed with the model


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: WGAN(clip_value=0.0), "clip_value"),
        (lambda: WGANGP(penalty_weight=-1.0), "penalty_weight"),
        (lambda: BEGAN(gamma=0.0), "gamma"),
        (lambda: BEGAN(lambda_k=-0.1), "lambda_k"),
    ],
)
def test_bad_objective_settings_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()
