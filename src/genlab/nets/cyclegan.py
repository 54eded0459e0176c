"""CycleGAN networks (Zhu et al. 2017, after Johnson et al. 2016 and Isola et al. 2017).

``ResnetGenerator``: 7x7 conv, two stride-2 3x3 down-sampling convs, ``num_blocks`` residual
blocks (reflection padding, instance norm), two 2x up-samplings, 7x7 conv, tanh. 6 blocks for
128 px, 9 for 256 px in the paper. ``PatchDiscriminator`` (PatchGAN): ``n_layers`` stride-2 4x4
convs, then two stride-1 4x4 convs to a map of logits, each scoring one patch of the input
(70x70 for n_layers = 3). Images are (B, C, H, W) in [0, 1]; the nets work in [-1, 1] inside.
Weights ~ N(0, 0.02).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from genlab.nets.gan_layers import init_normal_
from genlab.nets.translation_layers import (
    NORMS,
    UPSAMPLE_MODES,
    check_choice,
    check_square_image,
    conv_bias,
    norm_layer,
    upsample2x,
)

NUM_DOWN = 2  # stride-2 convolutions of the ResNet generator (so H must be a multiple of 4)


class ResnetBlock(nn.Module):
    """x + [pad, conv 3x3, norm, ReLU, (dropout), pad, conv 3x3, norm](x): (B, C, H, W) kept."""

    def __init__(self, channels: int, norm: str, dropout: float):
        super().__init__()
        bias = conv_bias(norm)
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm_layer(norm, channels),
            nn.ReLU(),
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm_layer(norm, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Image (B, C_in, H, W) -> image (B, C, H, W), both in [0, 1]; H, W multiples of 4.

    ``base_channels`` (the reference's ngf) in the first layer, 4x that in the residual blocks.
    ``upsample``: ``transposed`` (the paper) or ``resize`` (nearest resize + conv).
    ``in_channels`` defaults to C (CycleGAN: both domains have the data's channels).
    """

    @staticmethod
    def check_image_shape(image_shape: Sequence[int], **_: object) -> None:
        """Raise ValueError unless the image is square, 1 or 3 channels, a multiple of 4."""
        check_square_image("ResnetGenerator", image_shape, 2**NUM_DOWN)

    def __init__(
        self,
        image_shape: Sequence[int],
        base_channels: int = 64,
        num_blocks: int = 9,
        norm: str = "instance",
        dropout: float = 0.0,
        upsample: str = "transposed",
        in_channels: int | None = None,
    ):
        super().__init__()
        channels, _ = check_square_image("ResnetGenerator", image_shape, 2**NUM_DOWN)
        check_choice("ResnetGenerator", "norm", norm, NORMS)
        check_choice("ResnetGenerator", "upsample", upsample, UPSAMPLE_MODES)
        if num_blocks < 0:
            raise ValueError(f"ResnetGenerator: num_blocks={num_blocks} must be >= 0")
        if not 0 <= dropout < 1:
            raise ValueError(f"ResnetGenerator: dropout={dropout} must be in [0, 1)")
        bias = conv_bias(norm)
        width = base_channels
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels or channels, width, 7, bias=bias),
            norm_layer(norm, width),
            nn.ReLU(),
        ]
        for _ in range(NUM_DOWN):
            layers += [
                nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=bias),
                norm_layer(norm, 2 * width),
                nn.ReLU(),
            ]
            width *= 2
        layers += [ResnetBlock(width, norm, dropout) for _ in range(num_blocks)]
        for _ in range(NUM_DOWN):
            layers += [
                upsample2x(width, width // 2, upsample, kernel_size=3, bias=bias),
                norm_layer(norm, width // 2),
                nn.ReLU(),
            ]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_normal_(self)

    def forward(self, x: Tensor) -> Tensor:
        return (self.net(2 * x - 1) + 1) / 2  # (B, C, H, W) in [0, 1]


def patch_map_size(size: int, n_layers: int) -> int:
    """Side of the PatchGAN's logit map for an input of side ``size``: each 4x4/2 conv (pad 1)
    maps s -> floor(s / 2), each 4x4/1 conv (pad 1) maps s -> s - 1."""
    for _ in range(n_layers):
        size //= 2
    return size - 2


class PatchDiscriminator(nn.Module):
    """(B, C, H, W) in [0, 1] -> logits (B, 1, H', W'), one per overlapping input patch.

    conv(base) 4x4/2, lReLU; then n_layers - 1 times conv 4x4/2, norm, lReLU with the width
    doubling up to 8x base; conv 4x4/1, norm, lReLU; conv to 1 channel 4x4/1. No norm on the
    first layer. Receptive field: 70x70 for n_layers = 3 (16 for 1, 34 for 2).
    """

    @staticmethod
    def check_image_shape(image_shape: Sequence[int], n_layers: int = 3, **_: object) -> None:
        """Raise ValueError unless the logit map has at least one cell."""
        _, size = check_square_image("PatchDiscriminator", image_shape, 1)
        if n_layers < 1:
            raise ValueError(f"PatchDiscriminator: n_layers={n_layers} must be >= 1")
        if patch_map_size(size, n_layers) < 1:
            smallest = 3 * 2**n_layers
            raise ValueError(
                f"PatchDiscriminator: n_layers={n_layers} needs images of at least {smallest} px, "
                f"got {size}: lower model.discriminator.n_layers or raise data.image_size"
            )

    def __init__(
        self,
        image_shape: Sequence[int],
        base_channels: int = 64,
        n_layers: int = 3,
        norm: str = "instance",
    ):
        super().__init__()
        self.check_image_shape(image_shape, n_layers)
        check_choice("PatchDiscriminator", "norm", norm, NORMS)
        channels = int(image_shape[0])
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.Conv2d(channels, base_channels, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
        ]
        width = base_channels
        for n in range(1, n_layers + 1):
            stride = 2 if n < n_layers else 1  # the last of these keeps the size
            out = base_channels * min(2**n, 8)
            layers += [
                nn.Conv2d(width, out, 4, stride=stride, padding=1, bias=bias),
                norm_layer(norm, out),
                nn.LeakyReLU(0.2),
            ]
            width = out
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        init_normal_(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(2 * x - 1)  # (B, 1, H', W')
