"""Contract of every VAE encoder / decoder: shapes for each image size, conditioning, errors."""

import pytest
import torch

from genlab.nets.vae import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder

ENCODERS = [ConvEncoder, MLPEncoder]
DECODERS = [ConvDecoder, MLPDecoder]
SHAPES = [(1, 28, 28), (1, 32, 32), (3, 32, 32), (3, 64, 64)]


@pytest.mark.parametrize("encoder_cls", ENCODERS)
@pytest.mark.parametrize("image_shape", SHAPES)
@pytest.mark.parametrize("num_classes", [0, 10])
def test_encoder_outputs_posterior_parameters(encoder_cls, image_shape, num_classes):
    encoder = encoder_cls(image_shape=image_shape, latent_dim=5, num_classes=num_classes)
    x = torch.rand(4, *image_shape)
    y = torch.arange(4) if num_classes else None
    mu, logvar = encoder(x, y)
    assert mu.shape == logvar.shape == (4, 5)


@pytest.mark.parametrize("decoder_cls", DECODERS)
@pytest.mark.parametrize("image_shape", SHAPES)
@pytest.mark.parametrize("params_per_pixel", [1, 2])
def test_decoder_outputs_likelihood_parameters(decoder_cls, image_shape, params_per_pixel):
    decoder = decoder_cls(image_shape=image_shape, latent_dim=5, params_per_pixel=params_per_pixel)
    c, h, w = image_shape
    assert decoder(torch.randn(3, 5)).shape == (3, params_per_pixel * c, h, w)


@pytest.mark.parametrize("decoder_cls", DECODERS)
def test_conditional_decoder_depends_on_the_label(decoder_cls):
    torch.manual_seed(0)
    decoder = decoder_cls(image_shape=(1, 28, 28), latent_dim=4, num_classes=10)
    z = torch.randn(1, 4).repeat(2, 1)
    out = decoder(z, torch.tensor([3, 7]))
    assert not torch.allclose(out[0], out[1])
    with pytest.raises(ValueError, match="label-conditioned"):
        decoder(z)


def test_conv_encoder_rejects_sizes_it_cannot_halve():
    with pytest.raises(ValueError, match=r"image size 30x30 is not divisible by 2\^2"):
        ConvEncoder(image_shape=(1, 30, 30), latent_dim=4)
