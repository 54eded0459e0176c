import itertools
import math

import pytest
import torch

from genlab.data.shapes import FACTOR_NAMES, MAX_RADIUS, Shapes, max_radius_limit, render


def _factors(rows: list[tuple[float, float, float, float, float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_deterministic_from_seed_and_splits_differ():
    a = Shapes(num_train=200, num_test=100, seed=0)
    train, again = a.load("train"), Shapes(num_train=200, num_test=100, seed=0).load("train")
    assert torch.equal(train.images, again.images) and torch.equal(train.factors, again.factors)
    other = Shapes(num_train=200, num_test=100, seed=1).load("train")
    assert not torch.equal(train.images, other.images)
    assert not torch.equal(train.images[:100], a.load("test").images)


@pytest.mark.parametrize("size", [32, 64])
def test_arrays_labels_and_factors(size):
    arrays = Shapes(num_train=600, num_test=50, image_size=size).load("train")
    assert arrays.images.shape == (600, 1, size, size) and arrays.images.dtype == torch.uint8
    assert arrays.labels.dtype == torch.int64 and set(arrays.labels.tolist()) == {0, 1, 2}
    assert arrays.factors.shape == (600, 5) and arrays.factor_names == FACTOR_NAMES
    shape, scale, rotation, pos_x, pos_y = arrays.factors.T
    assert torch.equal(shape.long(), arrays.labels)
    assert scale.min() >= 0.5 and scale.max() <= 1.0
    assert rotation.min() >= 0 and rotation.max() < 2 * math.pi
    for pos in (pos_x, pos_y):
        assert pos.min() >= 0 and pos.max() <= 1
    assert (arrays.images.flatten(1).amax(1) == 255).all()  # every image shows its shape
    assert len(Shapes(num_train=600, num_test=50, image_size=size).load("test")) == 50


@pytest.mark.parametrize("size", [32, 64])
def test_shapes_stay_inside_the_frame(size):
    # the worst cases: largest scale, every corner, many rotations, plus random draws
    corners = itertools.product(
        range(3), [1.0], torch.linspace(0, 6.2, 32).tolist(), [0, 1], [0, 1]
    )
    extreme = render(_factors(list(corners)), size)
    drawn = Shapes(num_train=2000, num_test=1, image_size=size).load("train").images
    for images in (extreme, drawn):
        border = torch.cat(
            [images[..., 0, :], images[..., -1, :], images[..., :, 0], images[..., :, -1]], -1
        )
        assert border.max() == 0
        assert (images.flatten(1).amax(1) > 0).all()


def test_areas_match_geometry():
    r = MAX_RADIUS * 32  # circumradius in pixels at 64 px, scale 1
    expected = {0: 2 * r**2, 1: math.pi * r * (r / 2), 2: 3 * math.sqrt(3) / 4 * r**2}
    images = render(_factors([(s, 1.0, 0.3, 0.5, 0.5) for s in expected]), 64)
    for shape, area in expected.items():
        assert images[shape].float().sum() / 255 == pytest.approx(area, rel=0.02)


def _centre_of_mass(image: torch.Tensor) -> tuple[float, float]:
    weights = image[0].float()
    coords = torch.arange(image.shape[-1], dtype=torch.float32)
    total = weights.sum()
    return float((weights.sum(0) * coords).sum() / total), float(
        (weights.sum(1) * coords).sum() / total
    )


def _reach(image: torch.Tensor) -> tuple[float, float, float, float]:
    """How far the shape's pixels (>= 128) reach left, right, up, down from the image centre."""
    rows, cols = torch.nonzero(image[0] >= 128, as_tuple=True)
    centre = (image.shape[-1] - 1) / 2
    return (
        centre - cols.min().item(),
        cols.max().item() - centre,
        centre - rows.min().item(),
        rows.max().item() - centre,
    )


def test_rotation_is_counter_clockwise_and_respects_symmetry():
    tri = render(_factors([(2, 1, 0, 0.5, 0.5), (2, 1, math.pi / 2, 0.5, 0.5)]), 64)
    left, right, up, down = _reach(tri[0])
    assert up > 1.5 * down and left == right  # apex up
    left, right, up, down = _reach(tri[1])
    assert left > 1.5 * right and up == down  # turned counter-clockwise: apex left
    symmetric = [(0, math.pi / 2), (1, math.pi), (2, 2 * math.pi / 3)]
    for shape, turn in symmetric:
        pair = render(
            _factors([(shape, 0.8, 0.4, 0.3, 0.6), (shape, 0.8, 0.4 + turn, 0.3, 0.6)]), 64
        )
        assert (pair[0].int() - pair[1].int()).abs().max() <= 1


def test_position_factors_move_the_shape():
    images = render(_factors([(1, 0.7, 0, 0, 0), (1, 0.7, 0, 1, 0), (1, 0.7, 0, 0, 1)]), 32)
    (x0, y0), (x1, _), (_, y2) = (_centre_of_mass(im) for im in images)
    assert x0 < 12 and y0 < 12 and x1 > 20 and y2 > 20  # pos_x left -> right, pos_y top -> bottom


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"data.source.image_size=48 .*\(32, 64\)"):
        Shapes(image_size=48)
    with pytest.raises(ValueError, match=r"data.source.num_test=0 must be >= 1"):
        Shapes(num_test=0)
    with pytest.raises(ValueError, match="unknown split 'val'"):
        Shapes(num_train=5, num_test=5).load("val")


@pytest.mark.parametrize("size", [32, 64])
def test_larger_shapes_stay_inside_the_frame_and_scale_their_area(size):
    limit = max_radius_limit(size)
    corners = itertools.product(
        range(3), [1.0], torch.linspace(0, 6.2, 32).tolist(), [0, 1], [0, 1]
    )
    extreme = render(_factors(list(corners)), size, max_radius=limit)
    border = torch.cat(
        [extreme[..., 0, :], extreme[..., -1, :], extreme[..., :, 0], extreme[..., :, -1]], -1
    )
    assert border.max() == 0
    centred = _factors([(s, 1.0, 0.3, 0.5, 0.5) for s in range(3)])
    small, large = render(centred, 64, 0.35), render(centred, 64, 0.7)
    ratio = large.flatten(1).float().sum(1) / small.flatten(1).float().sum(1)  # (3,)
    assert ratio.tolist() == pytest.approx([4.0] * 3, rel=0.03)  # area ~ radius^2


@pytest.mark.parametrize("max_radius", [0.0, -0.1, 0.95])
def test_a_radius_that_does_not_fit_is_refused(max_radius):
    with pytest.raises(ValueError, match=r"data\.source\.max_radius=.* must be in \(0, 0\.90625\]"):
        Shapes(image_size=32, max_radius=max_radius)
