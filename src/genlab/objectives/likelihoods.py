"""Decoder likelihoods p(x | z) for images in [0, 1].

A likelihood turns the decoder's raw output ``params`` (B, P * C, H, W), with ``P =
num_params``, into a per-image log-probability, a mean image and a sample. Sums run over every
pixel and channel, so log-probabilities are in nats per image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def _sum_per_image(t: Tensor) -> Tensor:
    """(B, ...) -> (B,)"""
    return t.flatten(1).sum(dim=1)


class Bernoulli:
    """Bernoulli pixels for binary data; ``params`` are logits (B, C, H, W)."""

    num_params = 1
    requires_binary_data = True  # on gray values it is no likelihood: see ContinuousBernoulli

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """log p(x | params) per image, (B,). Exact for binary x."""
        return -_sum_per_image(F.binary_cross_entropy_with_logits(params, x, reduction="none"))

    def mean(self, params: Tensor) -> Tensor:
        return torch.sigmoid(params)

    def sample(self, params: Tensor) -> Tensor:
        return torch.bernoulli(torch.sigmoid(params))


class ContinuousBernoulli:
    """Continuous Bernoulli (Loaiza-Ganem & Cunningham 2019) for data in [0, 1]; logits as
    ``params``. It is a proper density on [0, 1], unlike Bernoulli applied to gray values."""

    num_params = 1

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        dist = torch.distributions.ContinuousBernoulli(logits=params)
        return _sum_per_image(dist.log_prob(x))

    def mean(self, params: Tensor) -> Tensor:
        return torch.distributions.ContinuousBernoulli(logits=params).mean

    def sample(self, params: Tensor) -> Tensor:
        return torch.distributions.ContinuousBernoulli(logits=params).sample()


class Gaussian:
    """Diagonal Gaussian pixels. With ``learn_scale`` the decoder predicts a mean and a
    log-scale per pixel (``params`` (B, 2C, H, W)); otherwise the scale is ``scale``."""

    def __init__(self, scale: float = 0.1, learn_scale: bool = False, min_log_scale: float = -7.0):
        if scale <= 0:
            raise ValueError(f"model.likelihood.scale={scale} must be > 0")
        self.scale = scale
        self.learn_scale = learn_scale
        self.min_log_scale = min_log_scale
        self.num_params = 2 if learn_scale else 1

    def _loc_log_scale(self, params: Tensor) -> tuple[Tensor, Tensor]:
        if self.learn_scale:
            loc, log_scale = params.chunk(2, dim=1)  # (B, C, H, W) each
            return loc, log_scale.clamp(min=self.min_log_scale)
        return params, torch.full_like(params, math.log(self.scale))

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        loc, log_scale = self._loc_log_scale(params)
        log_density = -0.5 * ((x - loc) * torch.exp(-log_scale)) ** 2 - log_scale
        return _sum_per_image(log_density - 0.5 * math.log(2 * math.pi))

    def mean(self, params: Tensor) -> Tensor:
        return self._loc_log_scale(params)[0].clamp(0, 1)

    def sample(self, params: Tensor) -> Tensor:
        loc, log_scale = self._loc_log_scale(params)
        return (loc + torch.exp(log_scale) * torch.randn_like(loc)).clamp(0, 1)
