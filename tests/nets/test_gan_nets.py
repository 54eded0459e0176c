"""DCGAN and Lucic networks: shapes, output ranges, initialisation, refused image shapes."""

import pytest
import torch
from torch import nn

from genlab.nets.dcgan import DCGANAutoencoder, DCGANDiscriminator, DCGANGenerator
from genlab.nets.lucic import LucicAutoencoder, LucicDiscriminator, LucicGenerator
from genlab.nets.toy import ToyAutoencoder, ToyDiscriminator, ToyGenerator

GENERATORS = [LucicGenerator, DCGANGenerator]
AUTOENCODERS = [LucicAutoencoder, DCGANAutoencoder]
DISCRIMINATORS = [LucicDiscriminator, DCGANDiscriminator, *AUTOENCODERS]
SHAPES = [(1, 28, 28), (3, 28, 28), (1, 32, 32), (3, 32, 32), (1, 64, 64), (3, 64, 64)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("net", GENERATORS)
def test_generators_map_latents_to_images_in_the_data_range(net, shape):
    generator = net(image_shape=shape, latent_dim=16)
    images = generator(torch.rand(3, 16) * 2 - 1)
    assert images.shape == (3, *shape)
    assert images.min() >= 0 and images.max() <= 1


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("net", DISCRIMINATORS)
def test_discriminators_give_one_score_per_image(net, shape):
    scores = net(image_shape=shape)(torch.rand(3, *shape))
    assert scores.shape == (3,) and torch.isfinite(scores).all()


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 64, 64)])
@pytest.mark.parametrize("net", [*AUTOENCODERS, ToyAutoencoder])
def test_the_autoencoders_score_by_their_l1_reconstruction_error(net, shape):
    ae = net(image_shape=shape)
    x = torch.rand(4, *shape)
    reconstruction = ae.reconstruct(x)
    assert reconstruction.shape == x.shape
    expected = (x - reconstruction).abs().mean(dim=(1, 2, 3))
    torch.testing.assert_close(ae(x), expected)
    if net is not ToyAutoencoder:  # image autoencoders reconstruct in the data range
        assert reconstruction.min() >= 0 and reconstruction.max() <= 1


def test_the_dcgan_autoencoder_pairs_the_discriminator_and_generator_ladders():
    ae = DCGANAutoencoder(image_shape=(1, 32, 32), code_dim=16, base_channels=8)
    d = DCGANDiscriminator(image_shape=(1, 32, 32), base_channels=8, batch_norm=False)
    shapes = [p.shape for p in ae.encoder.parameters()]
    assert shapes[:-2] == [p.shape for p in d.net.parameters()][:-2]  # all but the last conv
    assert ae.encoder(torch.rand(2, 1, 32, 32)).shape == (2, 16, 1, 1)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in ae.modules())  # BEGAN: no batch norm


def test_toy_nets_take_points_as_one_pixel_images():
    g, d = ToyGenerator(image_shape=(2, 1, 1), latent_dim=3), ToyDiscriminator((2, 1, 1))
    points = g(torch.randn(5, 3))
    assert points.shape == (5, 2, 1, 1) and d(points).shape == (5,)


@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("net", [LucicDiscriminator, DCGANDiscriminator])
def test_discriminator_batch_norm_is_switchable(net, batch_norm):
    disc = net(image_shape=(1, 32, 32), batch_norm=batch_norm)
    has_bn = any(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in disc.modules())
    assert has_bn == batch_norm


def test_lucic_layers_follow_the_paper():
    g, d = LucicGenerator(image_shape=(1, 28, 28), latent_dim=64), LucicDiscriminator((1, 28, 28))
    g_linear = [m.out_features for m in g.modules() if isinstance(m, nn.Linear)]
    d_convs = [
        (m.out_channels, m.kernel_size, m.stride) for m in d.modules() if isinstance(m, nn.Conv2d)
    ]
    assert g_linear == [1024, 128 * 7 * 7]
    assert d_convs == [(64, (4, 4), (2, 2)), (128, (4, 4), (2, 2))]
    assert [m.out_features for m in d.modules() if isinstance(m, nn.Linear)] == [1024, 1]
    assert any(isinstance(m, nn.LeakyReLU) for m in g.modules())  # as in the authors' code


@pytest.mark.parametrize("net", [*GENERATORS, LucicDiscriminator, DCGANDiscriminator])
def test_weights_start_from_n_0_002(net):
    kwargs = {"latent_dim": 100} if net in GENERATORS else {}
    weights = torch.cat(
        [
            m.weight.flatten()
            for m in net(image_shape=(3, 64, 64), **kwargs).modules()
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear)
        ]
    )
    assert weights.std().item() == pytest.approx(0.02, rel=0.05)
    assert abs(weights.mean().item()) < 1e-3


@pytest.mark.parametrize("net", [*GENERATORS, *DISCRIMINATORS])
@pytest.mark.parametrize(
    ("shape", "match"), [((1, 48, 48), "data.image_size"), ((2, 32, 32), "data.channels")]
)
def test_shapes_the_nets_cannot_take_are_refused(net, shape, match):
    kwargs = {"latent_dim": 8} if net in GENERATORS else {}
    with pytest.raises(ValueError, match=match):
        net(image_shape=shape, **kwargs)
