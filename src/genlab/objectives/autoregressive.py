"""Output distributions of autoregressive image models and their NLL (see FORMULAS.md).

An output distribution turns a network's parameters ``params`` (B, C, P, H, W), with ``P =
num_params`` per pixel channel, into log p(x) per image (B,) in nats: log p(x) = sum_i log p(x_i |
x_<i), every factor read off the parameters at its own position. It also samples one pixel
channel by inverse CDF from a given uniform ``u``, so that two samplers fed the same uniforms draw
the same images. Images are floats in [0, 1] as the data modules yield them: {0, 1} for binarized
data, k / 255 for 8-bit data.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def bits_per_dim(nll_nats: Tensor, num_dims: int) -> Tensor:
    """NLL in nats per image (B,) -> bits per dimension (B,): nll / (H * W * C * ln 2)."""
    return nll_nats / (num_dims * math.log(2))


def inverse_cdf(cdf: Tensor, u: Tensor) -> Tensor:
    """The value k in 0..V-1 with CDF(k - 1) < u <= CDF(k). cdf (B, V - 1): CDF(0..V-2); u (B,)
    in (0, 1) -> (B,) int64."""
    return (cdf < u.unsqueeze(1)).sum(dim=1)


def _sum_per_image(t: Tensor) -> Tensor:
    """(B, ...) -> (B,)"""
    return t.flatten(1).sum(dim=1)


def to_levels(x: Tensor) -> Tensor:
    """Images in [0, 1] (B, C, H, W) -> their 8-bit values 0..255 (int64)."""
    return (x * 255).round().long()


class Bernoulli:
    """Binary pixels: one logit per pixel channel. For binarized data."""

    num_params = 1
    binary = True

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """params (B, C, 1, H, W) logits, x (B, C, H, W) in {0, 1} -> log p(x) (B,)."""
        logits = params[:, :, 0]  # (B, C, H, W)
        return -_sum_per_image(F.binary_cross_entropy_with_logits(logits, x, reduction="none"))

    def sample(self, params: Tensor, u: Tensor) -> Tensor:
        """params (B, 1), u (B,) -> x (B,) in {0, 1}: 1 iff u > P(x = 0)."""
        p_zero = torch.sigmoid(-params)  # (B, 1): CDF(0)
        return inverse_cdf(p_zero, u).to(params.dtype)


class Categorical256:
    """A 256-way softmax per pixel channel (PixelCNN, van den Oord et al. 2016). For 8-bit data."""

    num_params = 256
    binary = False

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """params (B, C, 256, H, W) logits, x (B, C, H, W) in {0, 1/255, ..., 1} -> (B,)."""
        log_probs = F.log_softmax(params, dim=2)  # (B, C, 256, H, W)
        picked = log_probs.gather(2, to_levels(x).unsqueeze(2))  # (B, C, 1, H, W)
        return _sum_per_image(picked)

    def sample(self, params: Tensor, u: Tensor) -> Tensor:
        """params (B, 256), u (B,) -> x (B,) in {0, 1/255, ..., 1}."""
        cdf = F.softmax(params, dim=1).cumsum(dim=1)[:, :-1]  # (B, 255)
        return inverse_cdf(cdf, u).clamp(max=255).to(params.dtype) / 255


class DiscretizedLogisticMixture:
    """A mixture of ``num_components`` logistics per pixel channel, discretized to the 256 8-bit
    values (PixelCNN++, Salimans et al. 2017); the edge values 0 and 255 take the tails. Channels
    are not coupled through linear coefficients as in PixelCNN++: the network's channel masks
    already condition G on R and B on R, G. For 8-bit (colour) data.

    params (B, C, 3K, H, W): K mixture logits, K means and K log-scales, in the [-1, 1] scale
    where value v sits at v / 127.5 - 1.
    """

    binary = False

    def __init__(self, num_components: int = 5, min_log_scale: float = -7.0):
        if num_components < 1:
            raise ValueError(f"model.output.num_components={num_components} must be >= 1")
        self.num_components = num_components
        self.min_log_scale = min_log_scale
        self.num_params = 3 * num_components

    def _split(self, params: Tensor, dim: int) -> tuple[Tensor, Tensor, Tensor]:
        logits, means, log_scales = params.chunk(3, dim=dim)
        return logits, means, log_scales.clamp(min=self.min_log_scale)

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """params (B, C, 3K, H, W), x (B, C, H, W) in {0, 1/255, ..., 1} -> log p(x) (B,)."""
        logits, means, log_scales = self._split(params, dim=2)  # (B, C, K, H, W) each
        levels = to_levels(x).unsqueeze(2)  # (B, C, 1, H, W)
        centered = levels.to(params.dtype) / 127.5 - 1 - means  # (B, C, K, H, W)
        inv_scale = torch.exp(-log_scales)
        plus = inv_scale * (centered + 1 / 255)  # upper bin edge, standardized
        minus = inv_scale * (centered - 1 / 255)  # lower bin edge
        log_cdf_plus = F.logsigmoid(plus)  # log P(X <= upper): the bin of value 0
        log_sf_minus = F.logsigmoid(-minus)  # log P(X > lower): the bin of value 255
        bin_mass = torch.sigmoid(plus) - torch.sigmoid(minus)
        mid = inv_scale * centered
        log_density_mid = mid - log_scales - 2 * F.softplus(mid) - math.log(127.5)
        # a bin of tiny mass: its density at the centre times the bin width, without cancellation
        log_mass = torch.where(
            bin_mass > 1e-5, torch.log(bin_mass.clamp(min=1e-12)), log_density_mid
        )
        log_mass = torch.where(
            levels == 0, log_cdf_plus, torch.where(levels == 255, log_sf_minus, log_mass)
        )
        log_mix = torch.logsumexp(log_mass + F.log_softmax(logits, dim=2), dim=2)  # (B, C, H, W)
        return _sum_per_image(log_mix)

    def sample(self, params: Tensor, u: Tensor) -> Tensor:
        """params (B, 3K), u (B,) -> x (B,) in {0, 1/255, ..., 1}."""
        logits, means, log_scales = self._split(params, dim=1)  # (B, K) each
        edges = (torch.arange(255, dtype=params.dtype, device=params.device) + 0.5) / 127.5 - 1
        standardized = (edges[None, :, None] - means[:, None]) * torch.exp(-log_scales[:, None])
        weights = F.softmax(logits, dim=1)[:, None]  # (B, 1, K)
        cdf = (weights * torch.sigmoid(standardized)).sum(dim=2)  # (B, 255): CDF(0..254)
        return inverse_cdf(cdf, u).to(params.dtype) / 255
