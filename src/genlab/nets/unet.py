"""The U-Net generator of pix2pix (Isola et al. 2017), also an option of CycleGAN.

``num_downs`` stride-2 4x4 convolutions take (B, C_in, S, S) down to (S / 2^num_downs)^2 (1x1
for num_downs = log2 S, the paper's 256 px / 8 layout); as many 2x up-samplings come back, each
concatenated with the encoder output of the same size (skip connections). Encoder widths:
base, 2 base, 4 base, then 8 base. Leaky ReLU (0.2) before each down conv but the first, ReLU
before each up-sampling; no norm on the first and the innermost down conv. Dropout (pix2pix's
only noise) in the up-samplings of the 8 base blocks below the innermost, as in the reference
(num_downs - 5 of them). Images are in [0, 1]; the net works in [-1, 1] inside.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
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

MAX_DOWNS = 8  # the paper's 256 px layout
DROPOUT_FROM = 4  # up-samplings 4 .. num_downs - 2 (0 = outermost) have dropout


def default_num_downs(size: int) -> int:
    """As many halvings as ``size`` allows (at most MAX_DOWNS): 6 for 64 px, 7 for 128 px."""
    downs = 0
    while size % 2 == 0 and size > 1 and downs < MAX_DOWNS:
        size //= 2
        downs += 1
    return downs


class UNetGenerator(nn.Module):
    """Image (B, C_in, S, S) -> image (B, C, S, S), both in [0, 1].

    ``norm``: ``batch`` (pix2pix), ``instance`` (CycleGAN) or ``none``. ``dropout``: the
    probability in the inner up-samplings (0.5 in pix2pix, 0 in CycleGAN). ``num_downs``: None
    for ``default_num_downs(S)``; S must be a multiple of 2^num_downs. ``in_channels`` defaults
    to C.
    """

    @staticmethod
    def check_image_shape(
        image_shape: Sequence[int], num_downs: int | None = None, **_: object
    ) -> None:
        """Raise ValueError unless S is a multiple of 2^num_downs (num_downs >= 2)."""
        _, size = check_square_image("UNetGenerator", image_shape, 1)
        downs = default_num_downs(size) if num_downs is None else num_downs
        if downs < 2:
            raise ValueError(f"UNetGenerator: num_downs={downs} must be >= 2 (image size {size})")
        check_square_image("UNetGenerator", image_shape, 2**downs)

    def __init__(
        self,
        image_shape: Sequence[int],
        base_channels: int = 64,
        num_downs: int | None = None,
        norm: str = "batch",
        dropout: float = 0.5,
        upsample: str = "transposed",
        in_channels: int | None = None,
    ):
        super().__init__()
        self.check_image_shape(image_shape, num_downs)
        check_choice("UNetGenerator", "norm", norm, NORMS)
        check_choice("UNetGenerator", "upsample", upsample, UPSAMPLE_MODES)
        if not 0 <= dropout < 1:
            raise ValueError(f"UNetGenerator: dropout={dropout} must be in [0, 1)")
        channels = int(image_shape[0])
        n = default_num_downs(int(image_shape[1])) if num_downs is None else num_downs
        widths = [base_channels * min(2**i, 8) for i in range(n)]  # encoder outputs
        bias = conv_bias(norm)
        self.down = nn.ModuleList()
        for i, width in enumerate(widths):
            if i == 0:
                self.down.append(nn.Conv2d(in_channels or channels, width, 4, 2, 1, bias=bias))
                continue
            self.down.append(
                nn.Sequential(
                    nn.LeakyReLU(0.2),
                    nn.Conv2d(widths[i - 1], width, 4, 2, 1, bias=bias),
                    norm_layer(norm if i < n - 1 else "none", width),  # innermost: no norm
                )
            )
        # up[i] undoes down[i]: its input is down[i]'s output (innermost) or that concatenated
        # with up[i + 1]'s output; it returns down[i]'s input size and down[i - 1]'s width
        self.up = nn.ModuleList()
        for i in range(n):
            c_in = widths[i] if i == n - 1 else 2 * widths[i]
            if i == 0:
                layers = [nn.ReLU(), upsample2x(c_in, channels, upsample, 4, bias=True), nn.Tanh()]
            else:
                layers = [
                    nn.ReLU(),
                    upsample2x(c_in, widths[i - 1], upsample, 4, bias=bias),
                    norm_layer(norm, widths[i - 1]),
                ]
                if dropout > 0 and DROPOUT_FROM <= i < n - 1:
                    layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))
        init_normal_(self)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        h = 2 * x - 1  # (B, C_in, S, S) in [-1, 1]
        for down in self.down:
            h = down(h)  # (B, widths[i], S / 2^(i+1), S / 2^(i+1))
            skips.append(h)
        h = self.up[-1](skips[-1])  # innermost
        for i in range(len(self.up) - 2, -1, -1):
            h = self.up[i](torch.cat([skips[i], h], dim=1))  # (B, 2 widths[i], ...) in
        return (h + 1) / 2  # (B, C, S, S) in [0, 1]
