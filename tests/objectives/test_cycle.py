"""CycleGAN's cycle and identity terms against hand computation."""

import pytest
import torch

from genlab.objectives.cycle import CycleTerms, l1_reconstruction


def test_l1_reconstruction_is_the_mean_absolute_error_in_the_minus_one_one_range():
    target = torch.tensor([0.0, 1.0, 0.5, 0.25]).view(1, 1, 2, 2)
    output = torch.tensor([0.5, 1.0, 0.0, 0.5]).view(1, 1, 2, 2)
    # in [-1, 1]: target (-1, 1, 0, -0.5), output (0, 1, -1, 0): |.| = 1, 0, 1, 0.5 -> 2.5 / 4
    assert float(l1_reconstruction(target, output)) == pytest.approx(0.625)
    assert float(l1_reconstruction(target, target)) == 0.0


def test_l1_reconstruction_averages_over_batch_channels_and_pixels():
    target = torch.zeros(2, 3, 4, 4)
    output = torch.zeros(2, 3, 4, 4)
    output[1, 2, 3, 3] = 1.0  # one pixel off by 1 ([0, 1]) = 2 ([-1, 1]) among 96
    assert float(l1_reconstruction(target, output)) == pytest.approx(2 / 96)


def test_the_weighted_sum_uses_lambda_cyc_times_lambda_id_for_identity():
    terms = CycleTerms(*(torch.tensor(v) for v in (0.1, 0.2, 0.3, 0.4)))
    # 10 * (0.1 + 0.2) + 10 * 0.5 * (0.3 + 0.4) = 3 + 3.5
    assert float(terms.weighted(lambda_cyc=10.0, lambda_id=0.5)) == pytest.approx(6.5)
    assert float(terms.weighted(lambda_cyc=10.0, lambda_id=0.0)) == pytest.approx(3.0)
