"""Nearest-neighbour metrics against hand-worked point sets, brute force and symmetry."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genlab.metrics.nearest import (
    density_coverage,
    kth_nearest_radii,
    memorization_grid,
    memorization_summary,
    nearest_neighbours,
    neighbourhood_metrics,
    pairwise_distances,
    precision_recall,
)


def line(*xs: float) -> torch.Tensor:
    """Points on a line as (N, 1) features."""
    return torch.tensor(xs).unsqueeze(1)


def test_pairwise_distances_match_a_double_loop_for_any_batch_size():
    torch.manual_seed(0)
    a, b = torch.randn(6, 3), torch.randn(5, 3)
    expected = torch.tensor([[math.dist(x.tolist(), y.tolist()) for y in b] for x in a])
    for batch_size in (1, 4, 4096):
        torch.testing.assert_close(pairwise_distances(a, b, batch_size), expected)
    assert pairwise_distances(a, a).diagonal().abs().max() < 1e-3  # clamped, never NaN


def test_pairwise_distances_reject_bad_shapes_and_batch_size():
    with pytest.raises(ValueError, match="expected"):
        pairwise_distances(torch.zeros(3, 2), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="batch_size=0"):
        pairwise_distances(torch.zeros(3, 2), torch.zeros(3, 2), batch_size=0)


def test_kth_nearest_radii_on_a_hand_made_line():
    points = line(0, 1, 3, 6, 10)
    # sorted distances to the others: 0: 1 3 6 10 | 1: 1 2 5 9 | 3: 2 3 3 7 | 6: 3 4 5 6 |
    # 10: 4 7 9 10
    expected = {1: [1, 1, 2, 3, 4], 2: [3, 2, 3, 4, 7], 4: [10, 9, 7, 6, 10]}
    for k, radii in expected.items():
        for batch_size in (1, 2, 4096):
            assert kth_nearest_radii(points, k, batch_size).tolist() == radii
    with pytest.raises(ValueError, match="k=5"):
        kth_nearest_radii(points, k=5)


def test_all_four_metrics_on_a_hand_made_line():
    real, fake = line(0, 1, 2, 3), line(0, 1, 20, 21)
    metrics = neighbourhood_metrics(real, fake, k=1)
    # real radii (k=1) are all 1; fakes 0 and 1 lie in real balls, 20 and 21 do not: 2/4.
    # fake radii are all 1, balls [-1, 1], [0, 2], [19, 21], [20, 22]: reals 0, 1, 2 (distance
    # exactly 1 counts) are inside, 3 is not: 3/4.
    # real balls holding fake 0: reals 0, 1; fake 1: reals 0, 1, 2; density (2 + 3) / (1 * 4).
    # real balls holding some fake: 0, 1, 2 but not 3 (nearest fake 2 away): 3/4.
    assert metrics == {"precision": 0.5, "recall": 0.75, "density": 1.25, "coverage": 0.75}
    assert precision_recall(real, fake, k=1) == {"precision": 0.5, "recall": 0.75}
    assert density_coverage(real, fake, k=1) == {"density": 1.25, "coverage": 0.75}


def test_fakes_collapsed_onto_a_dense_region_give_density_above_one():
    real, fake = line(0, 1, 2), line(1, 1, 1)
    # real radii (k=2): 0 -> 2, 1 -> 1, 2 -> 2; each fake sits in all 3 balls: 9 / (2 * 3).
    # fake radii are 0, so only real 1 is inside a fake ball: recall 1/3.
    metrics = neighbourhood_metrics(real, fake, k=2)
    assert metrics["density"] == 1.5
    assert metrics["precision"] == 1.0
    assert metrics["coverage"] == 1.0
    assert metrics["recall"] == pytest.approx(1 / 3)


def test_density_and_coverage_on_a_hand_made_square():
    real = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # k=1 radii: all 1
    fake = torch.tensor([[0.0, 0.5], [2.0, 0.0], [-1.0, -1.0], [5.0, 5.0]])
    # (0, .5): 0.5 from (0,0) and (0,1), sqrt(1.25) from the others -> 2 balls
    # (2, 0): exactly 1 from (1,0), sqrt(2) from (1,1) -> 1 ball
    # (-1, -1): sqrt(2) from (0,0) -> 0 balls; (5, 5) -> 0 balls
    # density (2 + 1) / (1 * 4); covered reals (0,0), (0,1), (1,0) but not (1,1): 3/4
    assert density_coverage(real, fake, k=1) == {"density": 0.75, "coverage": 0.75}
    assert precision_recall(real, fake, k=1)["precision"] == 0.5


def test_identical_sets_score_one_and_distant_fakes_score_zero():
    torch.manual_seed(0)
    real = torch.randn(20, 4)
    same = neighbourhood_metrics(real, real.clone(), k=3)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    assert same["density"] >= 1 / 3  # each fake lies at least in the ball of its own copy
    far = neighbourhood_metrics(real, torch.randn(20, 4) + 100, k=3)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_metrics_do_not_depend_on_the_batch_size():
    torch.manual_seed(0)
    real, fake = torch.randn(30, 5), torch.randn(25, 5) * 0.6 + 0.5  # narrower, shifted
    expected = neighbourhood_metrics(real, fake, k=3, batch_size=4096)
    assert 0 < expected["recall"] < expected["precision"] < 1  # a non-trivial case
    for batch_size in (1, 7):
        assert neighbourhood_metrics(real, fake, k=3, batch_size=batch_size) == expected


point_sets = st.integers(4, 10).flatmap(
    lambda n: st.lists(
        st.tuples(st.integers(-6, 6), st.integers(-6, 6)), min_size=n, max_size=n
    ).map(lambda points: torch.tensor(points, dtype=torch.float32))
)


@settings(max_examples=30, deadline=None)
@given(real=point_sets, fake=point_sets)
def test_metrics_are_bounded_and_swapping_sets_swaps_precision_and_recall(real, fake):
    # integer coordinates make every distance exact, so the swap holds to the last bit
    metrics = neighbourhood_metrics(real, fake, k=3)
    for key in ("precision", "recall", "coverage"):
        assert 0.0 <= metrics[key] <= 1.0
    assert 0.0 <= metrics["density"] <= real.shape[0] / 3  # a fake is in at most N balls
    swapped = neighbourhood_metrics(fake, real, k=3)
    assert (swapped["precision"], swapped["recall"]) == (metrics["recall"], metrics["precision"])


def test_nearest_neighbours_find_a_planted_copy():
    torch.manual_seed(0)
    train = torch.rand(50, 3, 8, 8)
    samples = torch.rand(4, 3, 8, 8)
    samples[2] = train[37]
    distances, indices = nearest_neighbours(samples, train, batch_size=3)
    assert indices[2].item() == 37 and distances[2].item() == 0.0
    brute = torch.stack([(train - s).flatten(1).norm(dim=1) for s in samples])  # (4, 50)
    assert indices.tolist() == brute.argmin(dim=1).tolist()
    torch.testing.assert_close(distances, brute.min(dim=1).values)


def test_nearest_neighbours_read_uint8_images_as_unit_floats():
    torch.manual_seed(0)
    train = torch.randint(0, 256, (20, 1, 5, 5), dtype=torch.uint8)
    samples = torch.stack([train[4].float() / 255, torch.rand(1, 5, 5)])  # (2, 1, 5, 5)
    distances, indices = nearest_neighbours(samples, train)
    assert indices[0].item() == 4 and distances[0].item() == 0.0
    assert distances[1].item() < math.sqrt(25)  # on the [0, 1] scale, not [0, 255]


def test_nearest_neighbours_work_on_features():
    references = torch.tensor([[0.0, 0.0], [3.0, 4.0], [10.0, 0.0]])
    distances, indices = nearest_neighbours(torch.tensor([[3.0, 0.0], [9.0, 1.0]]), references)
    # (3, 0): 3 from (0, 0), 4 from (3, 4); (9, 1): sqrt(2) from (10, 0)
    assert indices.tolist() == [0, 2]
    torch.testing.assert_close(distances, torch.tensor([3.0, math.sqrt(2)]))


def test_memorization_grid_interleaves_samples_and_neighbours():
    samples = torch.arange(2.0).view(2, 1, 1, 1).expand(2, 1, 2, 2) / 10  # values 0.0, 0.1
    train = torch.tensor([50, 100, 150], dtype=torch.uint8).view(3, 1, 1, 1).expand(3, 1, 2, 2)
    grid = memorization_grid(samples, train, torch.tensor([2, 0]))
    assert grid.shape == (4, 1, 2, 2) and grid.dtype == torch.float32
    # sample 0 | train 2, sample 1 | train 0
    torch.testing.assert_close(grid[:, 0, 0, 0], torch.tensor([0.0, 150 / 255, 0.1, 50 / 255]))
    with pytest.raises(ValueError, match="must share"):
        memorization_grid(samples, torch.zeros(3, 3, 2, 2), torch.tensor([0, 1]))


def test_memorization_summary_on_hand_values():
    summary = memorization_summary(torch.arange(101.0), torch.tensor([2.0, 4.0]))
    # 1st percentile by linear interpolation: position 0.01 * 100 = 1 -> 1.0;
    # for [2, 4]: position 0.01 * 1 -> 2 + 0.01 * (4 - 2) = 2.02
    assert summary == pytest.approx(
        {
            "nn_pixel_mean": 50.0,
            "nn_pixel_min": 0.0,
            "nn_pixel_p01": 1.0,
            "nn_feature_mean": 3.0,
            "nn_feature_min": 2.0,
            "nn_feature_p01": 2.02,
        }
    )
    with pytest.raises(ValueError, match="feature_distances is empty"):
        memorization_summary(torch.ones(3), torch.empty(0))
