"""Decoder likelihoods against hand values and torch.distributions."""

import math

import pytest
import torch

from genlab.objectives.likelihoods import Bernoulli, ContinuousBernoulli, Gaussian


def test_bernoulli_log_likelihood_of_a_known_image():
    x = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])  # (1, 1, 2, 2)
    logits = torch.tensor([[[[2.0, -1.0], [0.5, 0.0]]]])

    def sigmoid(t):
        return 1 / (1 + math.exp(-t))

    expected = (
        math.log(sigmoid(2.0))
        + math.log(1 - sigmoid(-1.0))
        + math.log(1 - sigmoid(0.5))
        + math.log(sigmoid(0.0))
    )
    assert Bernoulli().log_prob(logits, x).item() == pytest.approx(expected, rel=1e-6)


def test_bernoulli_probabilities_sum_to_one_over_a_pixel():
    logits = torch.randn(3, 1, 1, 1)
    total = Bernoulli().log_prob(logits, torch.ones_like(logits)).exp()
    total += Bernoulli().log_prob(logits, torch.zeros_like(logits)).exp()
    torch.testing.assert_close(total, torch.ones(3))


def test_gaussian_fixed_and_learned_scale_match_normal():
    x = torch.rand(2, 3, 4, 4)
    loc = torch.rand(2, 3, 4, 4)
    expected = torch.distributions.Normal(loc, 0.2).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(Gaussian(scale=0.2).log_prob(loc, x), expected)
    log_scale = torch.randn(2, 3, 4, 4) * 0.3
    learned = Gaussian(learn_scale=True)
    expected = torch.distributions.Normal(loc, log_scale.exp()).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(learned.log_prob(torch.cat([loc, log_scale], 1), x), expected)
    assert learned.num_params == 2
    with pytest.raises(ValueError, match="scale=0"):
        Gaussian(scale=0)


def test_continuous_bernoulli_is_a_density_on_unit_interval():
    logits = torch.tensor([[[[1.5]]]])
    grid = torch.linspace(0, 1, 20001)
    densities = torch.stack(
        [ContinuousBernoulli().log_prob(logits, v.view(1, 1, 1, 1)).exp() for v in grid[::100]]
    )
    integral = torch.trapezoid(densities.squeeze(), grid[::100])
    assert integral.item() == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("likelihood", [Bernoulli(), ContinuousBernoulli(), Gaussian()])
def test_mean_and_sample_are_images(likelihood):
    params = torch.randn(2, likelihood.num_params, 5, 5)
    for image in (likelihood.mean(params), likelihood.sample(params)):
        assert image.shape == (2, 1, 5, 5)
        assert image.min() >= 0 and image.max() <= 1
