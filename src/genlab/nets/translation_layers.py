"""Layers shared by the image-to-image networks (CycleGAN's ResNet generator and PatchGAN, the
U-Net of CycleGAN and pix2pix): normalisation by name, 2x up-sampling by transposed or resize
convolution, and the image-size checks that config validation calls before anything is built.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

NORMS = ("instance", "batch", "none")
UPSAMPLE_MODES = ("transposed", "resize")
CHANNELS = (1, 3)


def check_choice(net: str, key: str, value: object, choices: Sequence[object]) -> None:
    """Raise ValueError naming ``<net>.<key>`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{net}: {key}={value!r} must be one of {', '.join(map(str, choices))}")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """InstanceNorm2d without affine parameters or running statistics (the CycleGAN reference),
    BatchNorm2d, or the identity (``none``)."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


def conv_bias(norm: str) -> bool:
    """Convolutions before a batch norm need no bias of their own (its shift is one)."""
    return norm != "batch"


def upsample2x(c_in: int, c_out: int, mode: str, kernel_size: int, bias: bool) -> nn.Module:
    """Doubles H and W: a stride-2 transposed convolution (``kernel_size`` 3 or 4, padding 1),
    or nearest-neighbour resize then a 3x3 convolution (Odena et al. 2016: no checkerboard
    artifacts). (B, c_in, H, W) -> (B, c_out, 2H, 2W)."""
    if mode == "transposed":
        # (H - 1) * 2 - 2 + k + output_padding = 2H for k = 3 (output_padding 1) and k = 4 (0)
        return nn.ConvTranspose2d(
            c_in, c_out, kernel_size, stride=2, padding=1, output_padding=4 - kernel_size, bias=bias
        )
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.ReflectionPad2d(1),
        nn.Conv2d(c_in, c_out, 3, bias=bias),
    )


def check_square_image(net: str, image_shape: Sequence[int], divisor: int) -> tuple[int, int]:
    """(channels, size) of a square (C, S, S) image shape with C in 1 / 3 and S a multiple of
    ``divisor``; ValueError naming the fix otherwise."""
    channels, height, width = (int(v) for v in image_shape)
    if channels not in CHANNELS:
        raise ValueError(f"{net} takes {CHANNELS} channels, got data.channels={channels}")
    if height != width or height % divisor or height < divisor:
        raise ValueError(
            f"{net} takes square images whose size is a multiple of {divisor}, got "
            f"{height}x{width}: set data.image_size to a multiple of {divisor}"
        )
    return channels, height
