"""Autoregressive output distributions against hand values; bits/dim; inverse-CDF sampling."""

import math

import pytest
import torch

from genlab.objectives.autoregressive import (
    Bernoulli,
    Categorical256,
    DiscretizedLogisticMixture,
    bits_per_dim,
    inverse_cdf,
)


def sigmoid(t):
    return 1 / (1 + math.exp(-t))


def test_bernoulli_nll_of_a_tiny_image_by_hand():
    x = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])  # (1, 1, 2, 2)
    logits = torch.tensor([[[[[2.0, -1.0], [0.5, 0.0]]]]])  # (1, 1, 1, 2, 2)
    nll = -Bernoulli().log_prob(logits, x)
    expected = -(
        math.log(sigmoid(2.0))
        + math.log(1 - sigmoid(-1.0))
        + math.log(1 - sigmoid(0.5))
        + math.log(sigmoid(0.0))
    )
    assert nll.shape == (1,)
    assert nll.item() == pytest.approx(expected, rel=1e-6)


def test_categorical_nll_of_a_tiny_colour_image_by_hand():
    torch.manual_seed(0)
    logits = torch.randn(1, 3, 256, 1, 2)  # (B, C, 256, H, W)
    levels = torch.tensor([[[[0, 17]], [[128, 255]], [[3, 200]]]])  # (1, 3, 1, 2)
    expected = 0.0
    for c in range(3):
        for j in range(2):
            column = logits[0, c, :, 0, j]
            expected -= (column[levels[0, c, 0, j]] - torch.logsumexp(column, 0)).item()
    nll = -Categorical256().log_prob(logits, levels / 255)
    assert nll.item() == pytest.approx(expected, rel=1e-5)


def logistic_cdf(v, mean, scale):
    return sigmoid((v - mean) / scale)


def test_logistic_mixture_probabilities_by_hand_and_summing_to_one():
    mixture = DiscretizedLogisticMixture(num_components=2)
    logits, means, log_scales = [0.3, -0.2], [-0.5, 0.4], [-3.0, -2.5]
    params = torch.tensor(logits + means + log_scales, dtype=torch.float64)  # (3K,)

    def prob(level):
        x = torch.full((1, 1, 1, 1), level / 255, dtype=torch.float64)
        return mixture.log_prob(params.view(1, 1, 6, 1, 1), x).exp().item()

    weights = [math.exp(w) / sum(math.exp(v) for v in logits) for w in logits]
    scales = [math.exp(s) for s in log_scales]

    def by_hand(level):
        centre, half = level / 127.5 - 1, 1 / 255
        total = 0.0
        for w, m, s in zip(weights, means, scales, strict=True):
            upper = 1.0 if level == 255 else logistic_cdf(centre + half, m, s)
            lower = 0.0 if level == 0 else logistic_cdf(centre - half, m, s)
            total += w * (upper - lower)
        return total

    for level in (0, 40, 64, 190, 255):
        assert prob(level) == pytest.approx(by_hand(level), rel=1e-6)
    assert sum(prob(level) for level in range(256)) == pytest.approx(1.0, abs=1e-6)


def test_bits_per_dim_converts_nats_per_image():
    dims = 28 * 28
    nll = torch.tensor([dims * math.log(2), 81.5])
    expected = torch.tensor([1.0, 81.5 / (dims * math.log(2))])  # 81.5 nats: 0.15 bits/dim
    torch.testing.assert_close(bits_per_dim(nll, dims), expected)


def test_inverse_cdf_picks_the_value_whose_interval_holds_u():
    cdf = torch.tensor([[0.2, 0.5, 0.9]]).repeat(5, 1)  # values 0..3
    u = torch.tensor([0.1, 0.2, 0.3, 0.7, 0.95])
    assert inverse_cdf(cdf, u).tolist() == [0, 0, 1, 2, 3]


@pytest.mark.parametrize(
    "output", [Bernoulli(), Categorical256(), DiscretizedLogisticMixture(num_components=3)]
)
def test_samples_follow_the_distribution(output):
    """With u on a fine grid, the share of each sampled value is its probability."""
    torch.manual_seed(0)
    params = torch.randn(output.num_params, dtype=torch.float64)
    n = 20000
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    values = output.sample(params.expand(n, -1), u)  # (n,)
    levels = 1 if output.binary else 255
    counts = torch.bincount((values * levels).round().long(), minlength=levels + 1)
    grid = torch.arange(levels + 1, dtype=torch.float64) / levels  # every value
    x = grid.view(-1, 1, 1, 1)  # (V, 1, 1, 1)
    probs = output.log_prob(params.view(1, 1, -1, 1, 1).expand(len(grid), -1, -1, -1, -1), x).exp()
    torch.testing.assert_close(counts.double() / n, probs, atol=2 / n, rtol=1e-3)


def test_logistic_mixture_needs_a_component():
    with pytest.raises(ValueError, match="num_components=0"):
        DiscretizedLogisticMixture(num_components=0)
