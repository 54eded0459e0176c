"""The ELBO pieces against closed forms, Monte Carlo and an exactly solvable model."""

import itertools
import math

import pytest
import torch

from genlab.objectives.elbo import (
    BetaKL,
    CapacityKL,
    gaussian_kl,
    gaussian_log_prob,
    iwae_bound,
    reparameterize,
    standard_normal_log_prob,
)


def test_gaussian_kl_matches_hand_value_and_torch_distributions():
    mu = torch.tensor([[1.0, -2.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)]])
    # 0.5 * [(1 + 1 - 1 - 0) + (4 + 4 - 1 - log 4)]
    expected = 0.5 * (1.0 + (7.0 - math.log(4.0)))
    assert gaussian_kl(mu, logvar).item() == pytest.approx(expected, rel=1e-6)

    mu, logvar = torch.randn(5, 4), torch.randn(5, 4)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(4), torch.ones(4))
    reference = torch.distributions.kl_divergence(q, p).sum(1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), reference, rtol=1e-5, atol=1e-5)


def test_gaussian_kl_matches_monte_carlo():
    torch.manual_seed(0)
    mu, logvar = torch.randn(3, 4) * 0.7, torch.randn(3, 4) * 0.5
    z = reparameterize(mu, logvar, num_samples=200_000)  # (K, B, D)
    monte_carlo = (gaussian_log_prob(z, mu, logvar) - standard_normal_log_prob(z)).mean(0)
    torch.testing.assert_close(gaussian_kl(mu, logvar), monte_carlo, rtol=0.02, atol=0.02)


def test_log_probs_match_torch_distributions():
    z, mu, logvar = torch.randn(6, 3), torch.randn(6, 3), torch.randn(6, 3)
    normal = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    torch.testing.assert_close(gaussian_log_prob(z, mu, logvar), normal.log_prob(z).sum(1))
    std = torch.distributions.Normal(0.0, 1.0)
    torch.testing.assert_close(standard_normal_log_prob(z), std.log_prob(z).sum(1))


def test_iwae_with_one_sample_is_the_log_weight():
    log_w = torch.randn(1, 7)
    torch.testing.assert_close(iwae_bound(log_w), log_w[0])


def test_iwae_is_log_mean_exp_and_above_the_mean_log_weight():
    log_w = torch.tensor([[0.0], [math.log(3.0)]])  # weights 1 and 3
    assert iwae_bound(log_w).item() == pytest.approx(math.log(2.0))
    log_w = torch.randn(50, 9) * 3
    assert torch.all(iwae_bound(log_w) >= log_w.mean(0))


def _linear_gaussian_log_weights(x, q_mu, q_logvar, k):
    """p(z) = N(0, 1), p(x|z) = N(z, 1): log p(x) = log N(x; 0, 2). Returns (K, B) log weights."""
    z = reparameterize(q_mu, q_logvar, num_samples=k)  # (K, B, 1)
    log_px_z = gaussian_log_prob(x.expand_as(z), z, torch.zeros_like(z))  # (K, B)
    return log_px_z + standard_normal_log_prob(z) - gaussian_log_prob(z, q_mu, q_logvar)


def test_iwae_is_exact_with_the_true_posterior():
    torch.manual_seed(0)
    x = torch.tensor([[0.3], [-1.5], [2.0]])  # (B, 1)
    log_px = gaussian_log_prob(x, torch.zeros_like(x), torch.full_like(x, math.log(2.0)))
    posterior_mu, posterior_logvar = x / 2, torch.full_like(x, math.log(0.5))
    for k in (1, 10):
        log_w = _linear_gaussian_log_weights(x, posterior_mu, posterior_logvar, k)
        torch.testing.assert_close(iwae_bound(log_w), log_px)


def test_iwae_tightens_with_k_towards_log_px():
    torch.manual_seed(0)
    x = torch.tensor([[1.0]])
    log_px = gaussian_log_prob(x, torch.zeros_like(x), torch.full_like(x, math.log(2.0))).item()
    q_mu, q_logvar = torch.tensor([[0.0]]), torch.tensor([[0.0]])  # a poor posterior
    bounds = []
    for k in (1, 10, 100, 1000):
        estimates = [
            iwae_bound(_linear_gaussian_log_weights(x, q_mu, q_logvar, k)) for _ in range(300)
        ]
        bounds.append(torch.cat(estimates).mean().item())
    assert all(a < b for a, b in itertools.pairwise(bounds))
    assert all(b <= log_px + 1e-3 for b in bounds)
    assert bounds[-1] == pytest.approx(log_px, abs=0.01)
    # the K = 1 bound is the ELBO = E_q log p(x|z) - KL(q || p); here q = p(z), so KL = 0 and
    # E_q log N(x; z, 1) = -0.5 log(2 pi) - 0.5 (x^2 + Var z)
    elbo = -0.5 * math.log(2 * math.pi) - 0.5 * (1.0**2 + 1.0)
    assert bounds[0] == pytest.approx(elbo, abs=0.05)


def test_beta_kl_scales_the_kl():
    kl = torch.tensor([2.0, 5.0])
    torch.testing.assert_close(BetaKL(4.0)(kl, step=123), torch.tensor([8.0, 20.0]))
    with pytest.raises(ValueError, match="beta=-1"):
        BetaKL(-1.0)


def test_capacity_rises_linearly_then_holds():
    weighting = CapacityKL(beta=10.0, max_capacity=20.0, anneal_steps=100)
    assert weighting.capacity(0) == 0.0
    assert weighting.capacity(50) == pytest.approx(10.0)
    assert weighting.capacity(1000) == pytest.approx(20.0)
    kl = torch.tensor([4.0, 16.0])
    torch.testing.assert_close(weighting(kl, step=50), torch.tensor([60.0, 60.0]))
    with pytest.raises(ValueError, match="anneal_steps=0"):
        CapacityKL(anneal_steps=0)
