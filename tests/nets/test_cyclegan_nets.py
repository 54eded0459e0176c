"""CycleGAN / pix2pix networks: shapes at 64 and 128 px, output range, PatchGAN receptive
field, layer layout (blocks, dropout, up-sampling), initialisation, refused shapes."""

import pytest
import torch
from torch import nn

from genlab.nets.cyclegan import PatchDiscriminator, ResnetBlock, ResnetGenerator, patch_map_size
from genlab.nets.unet import UNetGenerator, default_num_downs


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("upsample", ["transposed", "resize"])
@pytest.mark.parametrize("net", ["resnet6", "resnet9", "unet"])
def test_generators_keep_the_image_shape_and_range(net, upsample, channels, size):
    shape = (channels, size, size)
    if net == "unet":
        generator = UNetGenerator(shape, base_channels=8, upsample=upsample)
    else:
        blocks = int(net.removeprefix("resnet"))
        generator = ResnetGenerator(shape, base_channels=8, num_blocks=blocks, upsample=upsample)
    out = generator(torch.rand(2, *shape))
    assert out.shape == (2, *shape)
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize(("size", "n_layers", "side"), [(64, 3, 6), (128, 3, 14), (64, 2, 14)])
def test_patch_discriminator_gives_a_map_of_logits(size, n_layers, side):
    disc = PatchDiscriminator((3, size, size), base_channels=8, n_layers=n_layers)
    out = disc(torch.rand(2, 3, size, size))
    assert out.shape == (2, 1, side, side) and patch_map_size(size, n_layers) == side


@pytest.mark.parametrize(("n_layers", "field"), [(1, 16), (2, 34), (3, 70)])
def test_patchgan_receptive_field(n_layers, field):
    """The input pixels that reach one logit of the map: a field x field square (70 for the
    paper's n_layers = 3). Without normalisation, which would couple every pixel."""
    torch.manual_seed(0)
    disc = PatchDiscriminator((1, 160, 160), base_channels=4, n_layers=n_layers, norm="none")
    x = torch.rand(1, 1, 160, 160, requires_grad=True)
    out = disc(x)  # (1, 1, S, S)
    centre = out.shape[-1] // 2
    (grad,) = torch.autograd.grad(out[0, 0, centre, centre], x)
    rows, cols = torch.nonzero(grad[0, 0], as_tuple=True)
    assert int(rows.max() - rows.min()) + 1 == field
    assert int(cols.max() - cols.min()) + 1 == field


def test_resnet_generator_layout_follows_the_paper():
    g = ResnetGenerator((3, 128, 128), num_blocks=6)
    assert sum(isinstance(m, ResnetBlock) for m in g.modules()) == 6
    assert any(isinstance(m, nn.ReflectionPad2d) for m in g.modules())
    norms = [m for m in g.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert norms and not any(m.affine or m.track_running_stats for m in norms)
    convs = [m for m in g.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].kernel_size == (7, 7) and convs[-1].kernel_size == (7, 7)
    assert [m.stride for m in convs[1:3]] == [(2, 2), (2, 2)]
    assert max(m.out_channels for m in convs) == 256  # 4 x ngf in the residual blocks
    ups = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(ups) == 2
    resize = ResnetGenerator((3, 64, 64), upsample="resize")
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in resize.modules())
    assert sum(isinstance(m, nn.Upsample) for m in resize.modules()) == 2


def test_instance_norm_makes_the_generator_independent_of_the_batch():
    torch.manual_seed(0)
    g = ResnetGenerator((3, 32, 32), base_channels=8, num_blocks=2)
    x = torch.rand(3, 3, 32, 32)
    torch.testing.assert_close(g(x)[1:2], g(x[1:2]))


@pytest.mark.parametrize(("size", "downs", "dropouts"), [(64, 6, 1), (128, 7, 2), (256, 8, 3)])
def test_unet_depth_and_dropout_follow_the_reference(size, downs, dropouts):
    assert default_num_downs(size) == downs
    g = UNetGenerator((3, size, size), base_channels=4)
    assert len(g.down) == downs
    assert sum(isinstance(m, nn.Dropout) for m in g.modules()) == dropouts
    assert not any(
        isinstance(m, nn.Dropout) for m in UNetGenerator((3, size, size), dropout=0).modules()
    )
    x = torch.rand(1, 3, size, size)
    for down in g.down:
        x = down(x)
    assert x.shape[-1] == 1  # the bottleneck is 1x1


def test_unet_skips_carry_the_input_to_the_output():
    """The outermost skip makes the output depend on every input pixel directly: a change of
    one pixel changes the output most near that pixel."""
    torch.manual_seed(0)
    g = UNetGenerator((1, 32, 32), base_channels=8, dropout=0.0, norm="none")
    x = torch.rand(1, 1, 32, 32, requires_grad=True)
    (grad,) = torch.autograd.grad(g(x)[0, 0, 5, 7], x)
    assert int(grad.abs().argmax()) in {5 * 32 + 7, 5 * 32 + 6, 4 * 32 + 7, 4 * 32 + 6}


@pytest.mark.parametrize(
    "net",
    [
        lambda: ResnetGenerator((3, 64, 64)),
        lambda: UNetGenerator((3, 64, 64)),
        lambda: PatchDiscriminator((3, 64, 64)),
    ],
)
def test_weights_start_from_n_0_002(net):
    torch.manual_seed(0)
    weights = torch.cat(
        [
            m.weight.detach().flatten()
            for m in net().modules()
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)
        ]
    )
    assert abs(float(weights.mean())) < 1e-3 and abs(float(weights.std()) - 0.02) < 1e-3


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ResnetGenerator((3, 30, 30)), "multiple of 4"),
        (lambda: ResnetGenerator((2, 32, 32)), "channels"),
        (lambda: ResnetGenerator((3, 32, 32), norm="layer"), "norm='layer'"),
        (lambda: ResnetGenerator((3, 32, 32), upsample="bilinear"), "upsample='bilinear'"),
        (lambda: PatchDiscriminator((3, 16, 16), n_layers=3), "at least 24 px"),
        (lambda: PatchDiscriminator((3, 64, 64), n_layers=0), "n_layers=0"),
        (lambda: UNetGenerator((3, 48, 48), num_downs=6), "multiple of 64"),
    ],
)
def test_bad_settings_are_refused_with_the_fix(make, match):
    with pytest.raises(ValueError, match=match):
        make()
