"""The VAE objective: ELBO, its beta / capacity-weighted training form, and the IWAE bound.

Conventions (see FORMULAS.md): q(z|x) = N(mu, diag exp(logvar)), p(z) = N(0, I); every quantity
is in nats per image, shape (B,).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per image. mu, logvar (B, D) -> (B,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, I) summed over the last dim. (..., D) -> (...)."""
    return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(dim=-1)


def gaussian_log_prob(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, exp(logvar)) summed over the last dim; broadcasts. (..., D) -> (...)."""
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + math.log(2 * math.pi)).sum(-1)


def reparameterize(mu: Tensor, logvar: Tensor, num_samples: int | None = None) -> Tensor:
    """z = mu + sigma * eps. (B, D) -> (B, D), or (K, B, D) when num_samples=K is given."""
    std = torch.exp(0.5 * logvar)
    shape = mu.shape if num_samples is None else (num_samples, *mu.shape)
    return mu + std * torch.randn(shape, dtype=mu.dtype, device=mu.device)


def iwae_bound(log_weights: Tensor) -> Tensor:
    """Importance-weighted bound log (1/K) sum_k w_k from log w_k = log p(x, z_k) - log q(z_k|x).

    (K, B) -> (B,). Equals the ELBO estimate at K = 1 and tightens (in expectation) as K grows.
    """
    return torch.logsumexp(log_weights, dim=0) - math.log(log_weights.shape[0])


class BetaKL:
    """KL weighting of the training loss: beta * KL (beta = 1 is the plain ELBO)."""

    def __init__(self, beta: float = 1.0):
        if beta < 0:
            raise ValueError(f"model.kl_weighting.beta={beta} must be >= 0")
        self.beta = beta

    def __call__(self, kl: Tensor, step: int) -> Tensor:
        return self.beta * kl

    def capacity(self, step: int) -> float:
        return 0.0


class CapacityKL:
    """Capacity-annealed KL term beta * |KL - C| (Burgess et al. 2018), with the target
    capacity C (nats) rising linearly from 0 to ``max_capacity`` over ``anneal_steps`` steps."""

    def __init__(self, beta: float = 100.0, max_capacity: float = 25.0, anneal_steps: int = 10000):
        if beta < 0:
            raise ValueError(f"model.kl_weighting.beta={beta} must be >= 0")
        if max_capacity < 0:
            raise ValueError(f"model.kl_weighting.max_capacity={max_capacity} must be >= 0")
        if anneal_steps < 1:
            raise ValueError(f"model.kl_weighting.anneal_steps={anneal_steps} must be >= 1")
        self.beta = beta
        self.max_capacity = max_capacity
        self.anneal_steps = anneal_steps

    def capacity(self, step: int) -> float:
        return self.max_capacity * min(step / self.anneal_steps, 1.0)

    def __call__(self, kl: Tensor, step: int) -> Tensor:
        return self.beta * (kl - self.capacity(step)).abs()
