"""PixelCNN networks: masked (van den Oord et al., ICML 2016) and gated (van den Oord et al.,
NeurIPS 2016), optionally class-conditional.

Both map images x (B, C, H, W) in [0, 1] [and labels y (B,)] to output-distribution parameters
(B, C, P, H, W). The parameters at pixel (i, j), channel c depend only on the pixels before
(i, j) in raster order and on channels < c of pixel (i, j) (R -> G -> B): every convolution is
causal (it reads rows above and columns left of its output only, through asymmetric padding) and
masks the current pixel by colour groups. Feature k of n belongs to colour group k * C // n; mask
A (first layer) lets group g see input groups < g at the current pixel, mask B groups <= g.

Both nets also run incrementally for the cached sampler (genlab.nets.pixelcnn_sampling):
``net.sampling_cache(y, batch)`` returns a cache that keeps every layer's activations of the
pixels generated so far, so that a new pixel costs one receptive field of work, not one image.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def colour_groups(num_features: int, num_colours: int) -> Tensor:
    """The colour group (0..C-1) of each of ``num_features`` features (F,), in contiguous blocks."""
    return torch.arange(num_features) * num_colours // num_features


def gated_groups(num_features: int, num_colours: int) -> Tensor:
    """Groups of 2F gate pre-activations [tanh half, sigmoid half]: feature k of both halves
    shares the group of gated feature k."""
    return colour_groups(num_features, num_colours).repeat(2)


def gate(pre: Tensor) -> Tensor:
    """Gated activation tanh(a) * sigmoid(b) over the channel dim 1: (B, 2F, ...) -> (B, F, ...)."""
    a, b = pre.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def scale_input(x: Tensor) -> Tensor:
    """Images in [0, 1] -> [-1, 1], the scale the networks read."""
    return 2 * x - 1


class CausalConv2d(nn.Conv2d):
    """A convolution whose output at (i, j) reads input rows i - top .. i - top + kh - 1 and
    columns j - left .. j - left + kw - 1 (zeros outside the image), with its weights multiplied
    by a fixed 0/1 mask. Output size = input size.

    ``mask_type`` "A" / "B" masks the tap of the output's own pixel by colour groups (row top,
    column left) and zeroes every tap after it in raster order; None keeps every tap (for inputs
    that depend only on earlier rows, such as the vertical stack).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int],
        top: int,
        left: int,
        mask_type: str | None = None,
        in_groups: Tensor | None = None,
        out_groups: Tensor | None = None,
    ):
        super().__init__(in_channels, out_channels, kernel_size)
        kh, kw = kernel_size
        self.top, self.left = top, left
        self.padding_lrtb = (left, kw - 1 - left, top, kh - 1 - top)  # F.pad order
        mask = None
        if mask_type is not None:
            mask = torch.ones(out_channels, in_channels, kh, kw)
            mask[:, :, top, left:] = 0  # the current pixel and the rest of its row
            mask[:, :, top + 1 :] = 0  # rows below
            allowed = out_groups[:, None] > in_groups[None, :]  # (Cout, Cin)
            if mask_type == "B":
                allowed = out_groups[:, None] >= in_groups[None, :]
            mask[:, :, top, left] = allowed.float()
        self.register_buffer("mask", mask, persistent=False)

    def masked_weight(self) -> Tensor:
        return self.weight if self.mask is None else self.weight * self.mask

    def forward(self, x: Tensor) -> Tensor:
        """(B, Cin, H, W) -> (B, Cout, H, W)."""
        return F.conv2d(F.pad(x, self.padding_lrtb), self.masked_weight(), self.bias)

    # ---- incremental use (cached sampling) ----------------------------------------------------
    def input_buffer(self, batch: int, height: int, width: int, like: Tensor) -> Tensor:
        """Zeros (B, Cin, top + H, left + W + right): this layer's input, padded, filled in as
        the sampler goes (rows below the image are never read: the conv is causal)."""
        left, right, top, _ = self.padding_lrtb
        return like.new_zeros(batch, self.in_channels, top + height, left + width + right)

    def write(self, buffer: Tensor, i: int, j: int, value: Tensor) -> None:
        """Store the input at (i, j): value (B, Cin)."""
        buffer[:, :, i + self.top, j + self.left] = value

    def write_row(self, buffer: Tensor, i: int, value: Tensor) -> None:
        """Store the input of all of row i: value (B, Cin, W)."""
        buffer[:, :, i + self.top, self.left : self.left + value.shape[-1]] = value

    def at(self, buffer: Tensor, i: int, j: int) -> Tensor:
        """The output at (i, j) from the input buffer: (B, Cout)."""
        kh, kw = self.kernel_size
        window = buffer[:, :, i : i + kh, j : j + kw]  # (B, Cin, kh, kw)
        return F.linear(window.flatten(1), self.masked_weight().flatten(1), self.bias)

    def row(self, buffer: Tensor, i: int) -> Tensor:
        """The outputs of row i from the input buffer: (B, Cout, W)."""
        window = buffer[:, :, i : i + self.kernel_size[0]]  # (B, Cin, kh, left + W + right)
        return F.conv2d(window, self.masked_weight(), self.bias)[:, :, 0]

    def pointwise(self, features: Tensor) -> Tensor:
        """A 1x1 conv applied to one position's features: (B, Cin) -> (B, Cout)."""
        return F.linear(features, self.masked_weight().flatten(1), self.bias)


def conv1x1(in_groups: Tensor, out_groups: Tensor) -> CausalConv2d:
    """1x1 convolution with a mask-B colour-group mask (a feature sees groups <= its own)."""
    return CausalConv2d(len(in_groups), len(out_groups), (1, 1), 0, 0, "B", in_groups, out_groups)


class OutputHead(nn.Module):
    """ReLU -> 1x1 -> ReLU -> 1x1 to C * P parameters, colour-masked (mask B).

    (B, F, H, W) -> (B, C * P, H, W), output k in colour group k // P.
    """

    def __init__(self, in_groups: Tensor, head_channels: int, num_colours: int, num_params: int):
        super().__init__()
        head_groups = colour_groups(head_channels, num_colours)
        self.hidden = conv1x1(in_groups, head_groups)
        self.out = conv1x1(head_groups, colour_groups(num_colours * num_params, num_colours))

    def forward(self, h: Tensor) -> Tensor:
        return self.out(F.relu(self.hidden(F.relu(h))))

    def pointwise(self, h: Tensor) -> Tensor:
        """One position: (B, F) -> (B, C * P)."""
        return self.out.pointwise(F.relu(self.hidden.pointwise(F.relu(h))))


def _label_embedding(num_classes: int, dim: int) -> nn.Embedding | None:
    return nn.Embedding(num_classes, dim) if num_classes > 0 else None


def _check_labels(num_classes: int, y: Tensor | None) -> None:
    if num_classes > 0 and y is None:
        raise ValueError("this PixelCNN is class-conditional: pass labels y (B,)")


def _check_sizes(kernel_size: int, input_kernel_size: int, channels: int, **widths: int) -> None:
    """Odd kernels >= 3; every width at least one feature per colour group."""
    for name, size in (("kernel_size", kernel_size), ("input_kernel_size", input_kernel_size)):
        if size < 3 or size % 2 == 0:
            raise ValueError(f"model.net.{name}={size} must be odd and >= 3")
    for name, width in widths.items():
        if width < channels:
            raise ValueError(
                f"model.net.{name}={width} must be >= data.channels={channels}: each colour "
                "channel needs its own group of features"
            )


# ---- masked PixelCNN ---------------------------------------------------------------------------
class MaskedResidualBlock(nn.Module):
    """ReLU -> 1x1 (2h -> h) -> ReLU -> k x k mask B [+ label embedding] -> ReLU -> 1x1 (h -> 2h),
    added to the input (van den Oord et al. 2016, Figure 5)."""

    def __init__(self, channels: int, kernel_size: int, num_colours: int, num_classes: int):
        super().__init__()
        outer = colour_groups(2 * channels, num_colours)
        inner = colour_groups(channels, num_colours)
        k = kernel_size
        self.reduce = conv1x1(outer, inner)
        self.conv = CausalConv2d(
            channels, channels, (k // 2 + 1, k), k // 2, k // 2, "B", inner, inner
        )
        self.expand = conv1x1(inner, outer)
        self.embedding = _label_embedding(num_classes, channels)

    def forward(self, h: Tensor, y: Tensor | None) -> Tensor:
        t = self.conv(F.relu(self.reduce(F.relu(h))))  # (B, h, H, W)
        if self.embedding is not None:
            t = t + self.embedding(y)[:, :, None, None]
        return h + self.expand(F.relu(t))


class MaskedPixelCNN(nn.Module):
    """PixelCNN: a k x k mask-A input convolution, mask-B residual blocks, a 1x1 output head.

    Its receptive field has the masked-convolution blind spot (pixels up-right of the current
    one, beyond the kernels' reach); GatedPixelCNN has none.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        params_per_channel: int,
        num_classes: int = 0,
        hidden_channels: int = 32,
        num_blocks: int = 6,
        kernel_size: int = 3,
        input_kernel_size: int = 7,
        head_channels: int = 64,
    ):
        super().__init__()
        c = image_shape[0]
        _check_sizes(
            kernel_size,
            input_kernel_size,
            c,
            hidden_channels=hidden_channels,
            head_channels=head_channels,
        )
        self.image_shape = tuple(image_shape)
        self.params_per_channel = params_per_channel
        self.num_classes = num_classes
        k = input_kernel_size
        outer = colour_groups(2 * hidden_channels, c)
        self.input_conv = CausalConv2d(
            c, 2 * hidden_channels, (k // 2 + 1, k), k // 2, k // 2, "A", torch.arange(c), outer
        )
        self.blocks = nn.ModuleList(
            MaskedResidualBlock(hidden_channels, kernel_size, c, num_classes)
            for _ in range(num_blocks)
        )
        self.head = OutputHead(outer, head_channels, c, params_per_channel)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """x (B, C, H, W) in [0, 1], y (B,) -> parameters (B, C, P, H, W)."""
        _check_labels(self.num_classes, y)
        h = self.input_conv(scale_input(x))  # (B, 2h, H, W)
        for block in self.blocks:
            h = block(h, y)
        b, c, height, width = x.shape
        return self.head(h).view(b, c, self.params_per_channel, height, width)

    def sampling_cache(self, y: Tensor | None, batch: int) -> MaskedCache:
        """An empty cache for sampling ``batch`` images with labels y (B,) (None: unconditional)."""
        _check_labels(self.num_classes, y)
        return MaskedCache(self, y, batch)


class MaskedCache:
    """Incremental MaskedPixelCNN: per layer, the padded input activations of the pixels done so
    far; a new pixel reads one kernel window per layer. Every unmasked tap of a window lies at
    or before the pixel in raster order, so its value is final (the taps after it are masked and
    read zeros)."""

    def __init__(self, net: MaskedPixelCNN, y: Tensor | None, batch: int):
        self.net = net
        like = net.input_conv.weight
        _, height, width = net.image_shape
        self.image = net.input_conv.input_buffer(batch, height, width, like)
        self.inner = [b.conv.input_buffer(batch, height, width, like) for b in net.blocks]
        self.conditions = [
            None if b.embedding is None else b.embedding(y) for b in net.blocks
        ]  # (B, h) per block

    def begin_row(self, i: int) -> None:
        """Nothing to precompute per row for the masked net."""

    def set_pixel(self, i: int, j: int, value: Tensor) -> None:
        """The pixel's (partly sampled) value (B, C) in [0, 1] becomes the network's input."""
        self.net.input_conv.write(self.image, i, j, scale_input(value))

    def pixel_params(self, i: int, j: int) -> Tensor:
        """Parameters of pixel (i, j): (B, C, P)."""
        net = self.net
        h = net.input_conv.at(self.image, i, j)  # (B, 2h)
        for block, inner, condition in zip(net.blocks, self.inner, self.conditions, strict=True):
            block.conv.write(inner, i, j, F.relu(block.reduce.pointwise(F.relu(h))))
            t = block.conv.at(inner, i, j)  # (B, h)
            if condition is not None:
                t = t + condition
            h = h + block.expand.pointwise(F.relu(t))
        return net.head.pointwise(h).view(len(h), net.image_shape[0], net.params_per_channel)


# ---- gated PixelCNN ----------------------------------------------------------------------------
class GatedLayer(nn.Module):
    """One gated layer with a vertical and a horizontal stack (van den Oord et al. 2016b, Fig. 2).

    The vertical stack at row i sees rows < i only (all columns of its window): the first layer
    reads input rows i - k//2 .. i - 1, later ones their input's rows i - k//2 .. i. The
    horizontal stack sees row i up to column j (the current pixel through the colour mask) plus
    the vertical pre-activations at (i, j) through a 1x1 link. Both stacks' pre-activations get
    the label embedding, then tanh * sigmoid; the horizontal stack is residual after layer 0.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        kernel_size: int,
        num_colours: int,
        num_classes: int,
        first: bool,
    ):
        super().__init__()
        k = kernel_size
        self.first = first
        in_groups = torch.arange(num_colours) if first else colour_groups(in_channels, num_colours)
        pre_groups = gated_groups(channels, num_colours)
        v_height = k // 2 if first else k // 2 + 1  # the first layer stops above the current row
        self.vconv = CausalConv2d(in_channels, 2 * channels, (v_height, k), k // 2, k // 2)
        self.hconv = CausalConv2d(
            in_channels,
            2 * channels,
            (1, k // 2 + 1),
            0,
            k // 2,
            "A" if first else "B",
            in_groups,
            pre_groups,
        )
        self.link = nn.Conv2d(2 * channels, 2 * channels, 1)  # vertical -> horizontal
        self.hout = conv1x1(
            colour_groups(channels, num_colours), colour_groups(channels, num_colours)
        )
        self.embedding = _label_embedding(num_classes, 4 * channels)  # both stacks' 2F

    def conditions(self, y: Tensor | None) -> tuple[Tensor | float, Tensor | float]:
        """Label terms added to the vertical and horizontal pre-activations: (B, 2F) each."""
        if self.embedding is None:
            return 0.0, 0.0
        v, h = self.embedding(y).chunk(2, dim=1)
        return v, h

    def forward(self, v: Tensor, h: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor]:
        """v, h (B, F_in, H, W) -> (B, F, H, W) each."""
        cond_v, cond_h = self.conditions(y)
        if self.embedding is not None:
            cond_v, cond_h = cond_v[:, :, None, None], cond_h[:, :, None, None]
        v_pre = self.vconv(v) + cond_v  # (B, 2F, H, W)
        h_pre = self.hconv(h) + self.link(v_pre) + cond_h  # (B, 2F, H, W)
        h_out = self.hout(gate(h_pre))  # (B, F, H, W)
        return gate(v_pre), (h_out if self.first else h + h_out)

    def link_pointwise(self, v_pre: Tensor) -> Tensor:
        """(B, 2F) -> (B, 2F)."""
        return F.linear(v_pre, self.link.weight.flatten(1), self.link.bias)


class GatedPixelCNN(nn.Module):
    """Gated PixelCNN without blind spot: ``num_layers`` gated layers (the first with
    ``input_kernel_size``, the rest ``kernel_size``), then a colour-masked 1x1 output head on
    the horizontal stack. With ``num_classes`` > 0 a label embedding enters every gated layer.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        params_per_channel: int,
        num_classes: int = 0,
        hidden_channels: int = 32,
        num_layers: int = 6,
        kernel_size: int = 5,
        input_kernel_size: int = 7,
        head_channels: int = 64,
    ):
        super().__init__()
        c = image_shape[0]
        _check_sizes(
            kernel_size,
            input_kernel_size,
            c,
            hidden_channels=hidden_channels,
            head_channels=head_channels,
        )
        if num_layers < 1:
            raise ValueError(f"model.net.num_layers={num_layers} must be >= 1")
        self.image_shape = tuple(image_shape)
        self.params_per_channel = params_per_channel
        self.num_classes = num_classes
        self.layers = nn.ModuleList(
            GatedLayer(
                c if n == 0 else hidden_channels,
                hidden_channels,
                input_kernel_size if n == 0 else kernel_size,
                c,
                num_classes,
                first=n == 0,
            )
            for n in range(num_layers)
        )
        self.head = OutputHead(
            colour_groups(hidden_channels, c), head_channels, c, params_per_channel
        )

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """x (B, C, H, W) in [0, 1], y (B,) -> parameters (B, C, P, H, W)."""
        _check_labels(self.num_classes, y)
        v = h = scale_input(x)
        for layer in self.layers:
            v, h = layer(v, h, y)  # (B, F, H, W) each
        b, c, height, width = x.shape
        return self.head(h).view(b, c, self.params_per_channel, height, width)

    def sampling_cache(self, y: Tensor | None, batch: int) -> GatedCache:
        """An empty cache for sampling ``batch`` images with labels y (B,) (None: unconditional)."""
        _check_labels(self.num_classes, y)
        return GatedCache(self, y, batch)


class GatedCache:
    """Incremental GatedPixelCNN. The vertical stack of row i depends on rows < i only, so it is
    computed once per row (``begin_row``); the horizontal stack is computed pixel by pixel from
    the current row's cached activations, its window 1 x (k//2 + 1) per layer."""

    def __init__(self, net: GatedPixelCNN, y: Tensor | None, batch: int):
        self.net = net
        like = net.head.out.weight
        _, height, width = net.image_shape
        self.v_inputs = [
            layer.vconv.input_buffer(batch, height, width, like) for layer in net.layers
        ]
        self.h_inputs = [
            layer.hconv.input_buffer(batch, height, width, like) for layer in net.layers
        ]
        self.v_pre: list[Tensor] = []  # per layer, (B, 2F, W): the current row's pre-activations
        self.conditions = [layer.conditions(y) for layer in net.layers]

    def begin_row(self, i: int) -> None:
        """The vertical stack of row i, every layer (its inputs, rows < i, are all known)."""
        self.v_pre = []
        layers = self.net.layers
        for n, layer in enumerate(layers):
            cond_v = self.conditions[n][0]
            if layer.embedding is not None:
                cond_v = cond_v[:, :, None]
            v_pre = layer.vconv.row(self.v_inputs[n], i) + cond_v  # (B, 2F, W)
            self.v_pre.append(v_pre)
            if n + 1 < len(layers):
                layers[n + 1].vconv.write_row(self.v_inputs[n + 1], i, gate(v_pre))

    def set_pixel(self, i: int, j: int, value: Tensor) -> None:
        """The pixel's (partly sampled) value (B, C) in [0, 1] becomes the network's input."""
        first = self.net.layers[0]
        first.vconv.write(self.v_inputs[0], i, j, scale_input(value))
        first.hconv.write(self.h_inputs[0], i, j, scale_input(value))

    def pixel_params(self, i: int, j: int) -> Tensor:
        """Parameters of pixel (i, j): (B, C, P). ``begin_row(i)`` must have run."""
        layers = self.net.layers
        h = None
        for n, layer in enumerate(layers):
            h_pre = (
                layer.hconv.at(self.h_inputs[n], i, j)
                + layer.link_pointwise(self.v_pre[n][:, :, j])
                + self.conditions[n][1]
            )  # (B, 2F)
            h_out = layer.hout.pointwise(gate(h_pre))  # (B, F)
            h = h_out if layer.first else h + h_out
            if n + 1 < len(layers):
                layers[n + 1].hconv.write(self.h_inputs[n + 1], i, j, h)
        return self.net.head.pointwise(h).view(len(h), self.net.image_shape[0], -1)
