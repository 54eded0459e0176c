"""Contract of the PixelCNN nets: shapes, causality by gradients (mask A, no blind spot for the
gated net), conditioning, and the cached sampler drawing exactly the naive sampler's images."""

import pytest
import torch

from genlab.nets.pixelcnn import GatedPixelCNN, MaskedPixelCNN
from genlab.nets.pixelcnn_sampling import cached_sample, naive_sample
from genlab.objectives.autoregressive import Bernoulli, Categorical256, DiscretizedLogisticMixture

NETS = [MaskedPixelCNN, GatedPixelCNN]
SMALL = {"hidden_channels": 12, "head_channels": 16}
# gated: 7x7 first layer, then 5x5: its receptive field covers every earlier pixel of 8x8 images
FULL_VIEW = {"num_layers": 3, "kernel_size": 5, "input_kernel_size": 7}
DEPTH = {MaskedPixelCNN: {"num_blocks": 3}, GatedPixelCNN: FULL_VIEW}


def make_net(net_cls, image_shape, params=1, num_classes=0, **kwargs):
    torch.manual_seed(0)
    net = net_cls(image_shape, params, num_classes=num_classes, **{**SMALL, **kwargs})
    return net.double().eval()


@pytest.mark.parametrize("net_cls", NETS)
@pytest.mark.parametrize("image_shape", [(1, 28, 28), (3, 8, 8)])
@pytest.mark.parametrize("num_classes", [0, 10])
def test_net_outputs_parameters_per_pixel_channel(net_cls, image_shape, num_classes):
    net = net_cls(image_shape, 7, num_classes=num_classes, **SMALL)
    x = torch.rand(2, *image_shape)
    y = torch.tensor([1, 3]) if num_classes else None
    c, h, w = image_shape
    assert net(x, y).shape == (2, c, 7, h, w)


def position_gradients(net, image_shape, num_classes=0):
    """Gradient of the summed parameters at each output (i, j, c) w.r.t. the input image, all
    positions in one backward pass (one batch element per position): (H * W * C, C, H, W), in
    raster order of the output position (rows, columns, channels)."""
    c, h, w = image_shape
    positions = [(i, j, k) for i in range(h) for j in range(w) for k in range(c)]
    torch.manual_seed(1)
    x = torch.rand(1, c, h, w, dtype=torch.float64).repeat(len(positions), 1, 1, 1)
    x.requires_grad_(True)
    y = torch.zeros(len(positions), dtype=torch.long) if num_classes else None
    params = net(x, y)  # (N, C, P, H, W)
    rows = torch.arange(len(positions))
    i, j, k = (torch.tensor(p) for p in zip(*positions, strict=True))
    params[rows, k, :, i, j].sum().backward()
    return x.grad


def raster_index(image_shape):
    """Raster order of every input element (C, H, W): rows, then columns, then channels."""
    c, h, w = image_shape
    return torch.arange(c * h * w).view(h, w, c).permute(2, 0, 1)


@pytest.mark.parametrize("net_cls", NETS)
@pytest.mark.parametrize("image_shape", [(1, 8, 8), (3, 5, 5)])
def test_output_ignores_the_current_and_later_pixels(net_cls, image_shape):
    net = make_net(net_cls, image_shape, params=2, num_classes=3, **DEPTH[net_cls])
    grads = position_gradients(net, image_shape, num_classes=3)
    order = raster_index(image_shape)  # (C, H, W)
    for n, grad in enumerate(grads):  # n: the output position's raster index
        later = order >= n  # (C, H, W): (i, j, c) itself and everything after it
        assert torch.all(grad[later] == 0), f"output {n} depends on a later input"


@pytest.mark.parametrize("image_shape", [(1, 8, 8), (3, 5, 5)])
def test_gated_output_sees_every_earlier_pixel_no_blind_spot(image_shape):
    net = make_net(GatedPixelCNN, image_shape, params=2, **FULL_VIEW)
    grads = position_gradients(net, image_shape)
    order = raster_index(image_shape)
    for n, grad in enumerate(grads):
        earlier = order < n
        assert torch.all(grad[earlier] != 0), f"output {n} misses an earlier input"


def test_masked_pixelcnn_has_the_blind_spot_the_gated_net_removes():
    net = make_net(MaskedPixelCNN, (1, 8, 8), num_blocks=3)
    grads = position_gradients(net, (1, 8, 8))
    # pixel (4, 0) cannot see (3, 7): up-right, out of reach of the stacked masked kernels
    assert grads[4 * 8 + 0][0, 3, 7] == 0 and grads[4 * 8 + 0][0, 3, 0] != 0


@pytest.mark.parametrize("net_cls", NETS)
def test_label_changes_the_output_and_is_required(net_cls):
    net = make_net(net_cls, (1, 8, 8), num_classes=4)
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64).repeat(2, 1, 1, 1)
    out = net(x, torch.tensor([0, 3]))
    assert not torch.allclose(out[0], out[1])
    with pytest.raises(ValueError, match="class-conditional"):
        net(x)


@pytest.mark.parametrize("net_cls", NETS)
@pytest.mark.parametrize(
    ("image_shape", "output"),
    [
        ((1, 7, 7), Bernoulli()),
        ((3, 4, 4), Categorical256()),
        ((3, 4, 4), DiscretizedLogisticMixture(num_components=3)),
    ],
)
def test_cached_sampler_draws_exactly_the_naive_samplers_images(net_cls, image_shape, output):
    net = make_net(net_cls, image_shape, params=output.num_params, num_classes=3)
    u = torch.rand(6, *image_shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    y = torch.arange(6) % 3
    naive = naive_sample(net, output, u, y)
    cached = cached_sample(net, output, u, y)
    assert torch.equal(naive, cached)
    assert naive.std() > 0  # not a degenerate image


@pytest.mark.parametrize("net_cls", NETS)
@pytest.mark.parametrize(("key", "value"), [("kernel_size", 4), ("input_kernel_size", 1)])
def test_even_or_tiny_kernels_are_refused(net_cls, key, value):
    with pytest.raises(ValueError, match=f"model.net.{key}={value}"):
        net_cls((1, 8, 8), 1, **{key: value})


@pytest.mark.parametrize("net_cls", NETS)
def test_too_few_features_for_the_colour_groups_are_refused(net_cls):
    with pytest.raises(ValueError, match=r"model.net.head_channels=2 must be >= data.channels=3"):
        net_cls((3, 8, 8), 256, hidden_channels=8, head_channels=2)
