"""GAN objectives of Lucic et al. 2018 (Table 1), written on the discriminator's raw outputs.

An objective answers four questions for the one GAN module:

- ``d_loss(real_out, fake_out)``: the discriminator loss (minimised) from D's outputs (B,);
- ``g_loss(fake_out)``: the generator loss (minimised);
- ``penalty(discriminator, real, fake)``: a term added to the D loss (zero by default);
- ``after_d_step(discriminator)``: called after every D update (WGAN clips, BEGAN moves k_t).

Objectives are ``nn.Module`` s so that state (BEGAN's k_t) is a buffer, checkpointed with the
model. ``logs()`` returns extra scalars to log. Every log-sigmoid is a softplus of a logit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, autograd, nn


def gradient_penalty(discriminator: nn.Module, points: Tensor) -> Tensor:
    """E (||grad_x D(x)|| - 1)^2 over ``points`` (B, C, H, W), the norm taken per sample over
    all pixels and channels. Differentiable (create_graph), for the D update."""
    points = points.detach().requires_grad_(True)
    out = discriminator(points)  # (B,)
    (grad,) = autograd.grad(out.sum(), points, create_graph=True)  # (B, C, H, W)
    norms = grad.flatten(1).norm(dim=1)  # (B,)
    return (norms - 1).pow(2).mean()


def mean_across_processes(value: Tensor) -> Tensor:
    """``value`` averaged over the processes of a distributed run (itself when there is one)."""
    if dist.is_available() and dist.is_initialized():
        value = value.clone()
        dist.all_reduce(value)
        value /= dist.get_world_size()
    return value


class GANObjective(nn.Module, ABC):
    """Defaults shared by every objective: no penalty, nothing after the D step, no extra logs."""

    @abstractmethod
    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        """The discriminator loss (scalar) from D's outputs on real and fake images (B,)."""

    @abstractmethod
    def g_loss(self, fake_out: Tensor) -> Tensor:
        """The generator loss (scalar) from D's outputs on fake images (B,)."""

    def penalty(self, discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return real.new_zeros(())

    def after_d_step(self, discriminator: nn.Module) -> None:
        return None

    def logs(self) -> dict[str, Tensor]:
        return {}


class Minimax(GANObjective):
    """MM GAN (Goodfellow et al. 2014): D maximises log D(x) + log(1 - D(x~)); G minimises
    log(1 - D(x~)) = -softplus(D(x~))."""

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return F.softplus(-real_out).mean() + F.softplus(fake_out).mean()

    def g_loss(self, fake_out: Tensor) -> Tensor:
        return -F.softplus(fake_out).mean()


class NonSaturating(Minimax):
    """NS GAN: MM's discriminator; G minimises -log D(x~) = softplus(-D(x~))."""

    def g_loss(self, fake_out: Tensor) -> Tensor:
        return F.softplus(-fake_out).mean()


class LeastSquares(GANObjective):
    """LSGAN (Mao et al. 2017) with targets 0 (fake) / 1 (real) for D and 1 for G."""

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return (real_out - 1).pow(2).mean() + fake_out.pow(2).mean()

    def g_loss(self, fake_out: Tensor) -> Tensor:
        return (fake_out - 1).pow(2).mean()


class Hinge(GANObjective):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018)."""

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return F.relu(1 - real_out).mean() + F.relu(1 + fake_out).mean()

    def g_loss(self, fake_out: Tensor) -> Tensor:
        return -fake_out.mean()


class WGAN(GANObjective):
    """Wasserstein GAN (Arjovsky et al. 2017): a critic, its weights clipped to
    [-clip_value, clip_value] after every D step (no clipping when clip_value is None)."""

    def __init__(self, clip_value: float | None = 0.01):
        super().__init__()
        if clip_value is not None and not clip_value > 0:
            raise ValueError(f"model.objective.clip_value={clip_value} must be > 0 (or null)")
        self.clip_value = clip_value

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return fake_out.mean() - real_out.mean()

    def g_loss(self, fake_out: Tensor) -> Tensor:
        return -fake_out.mean()

    @torch.no_grad()
    def after_d_step(self, discriminator: nn.Module) -> None:
        if self.clip_value is not None:
            for param in discriminator.parameters():
                param.clamp_(-self.clip_value, self.clip_value)


def _check_penalty_weight(penalty_weight: float) -> float:
    if not penalty_weight >= 0:
        raise ValueError(f"model.objective.penalty_weight={penalty_weight} must be >= 0")
    return penalty_weight


class WGANGP(WGAN):
    """WGAN-GP (Gulrajani et al. 2017): the WGAN critic loss plus
    penalty_weight * E (||grad D(xh)|| - 1)^2 at xh = e x + (1 - e) x~, e ~ U[0, 1] per sample."""

    def __init__(self, penalty_weight: float = 10.0):
        super().__init__(clip_value=None)
        self.penalty_weight = _check_penalty_weight(penalty_weight)

    def penalty(self, discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        e = torch.rand(real.shape[0], 1, 1, 1, device=real.device)  # (B, 1, 1, 1)
        points = e * real + (1 - e) * fake.detach()  # (B, C, H, W)
        return self.penalty_weight * gradient_penalty(discriminator, points)


class DRAGAN(NonSaturating):
    """DRAGAN (Kodali et al. 2017): the NS GAN plus the same penalty at perturbed real points
    xh = x + perturb_scale * std(x) * u, u ~ U[0, 1) (std over the whole batch)."""

    def __init__(self, penalty_weight: float = 10.0, perturb_scale: float = 0.5):
        super().__init__()
        self.penalty_weight = _check_penalty_weight(penalty_weight)
        self.perturb_scale = perturb_scale

    def penalty(self, discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        points = real + self.perturb_scale * real.std() * torch.rand_like(real)  # (B, C, H, W)
        return self.penalty_weight * gradient_penalty(discriminator, points)


class BEGAN(GANObjective):
    """BEGAN (Berthelot et al. 2017). D is an autoencoder whose output is the per-sample L1
    reconstruction error L(v) (B,) (see ``genlab.nets.lucic.LucicAutoencoder``).

    L_D = L(x) - k_t L(x~), L_G = L(x~); after each D step
    k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(x~)), 0, 1), with the batch means of the
    last D step (averaged over processes). M_global = L(x) + |gamma L(x) - L(x~)| is logged.
    """

    def __init__(self, gamma: float = 0.75, lambda_k: float = 1e-3, k_init: float = 0.0):
        super().__init__()
        if not 0 < gamma <= 1:
            raise ValueError(f"model.objective.gamma={gamma} must be in (0, 1]")
        if not lambda_k >= 0:
            raise ValueError(f"model.objective.lambda_k={lambda_k} must be >= 0")
        self.gamma = gamma
        self.lambda_k = lambda_k
        self.register_buffer("k", torch.tensor(float(k_init)))
        self.register_buffer("convergence", torch.tensor(float("nan")))
        self._last_losses: tuple[Tensor, Tensor] | None = None

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        real_loss, fake_loss = real_out.mean(), fake_out.mean()
        self._last_losses = (real_loss.detach(), fake_loss.detach())
        return real_loss - self.k * fake_loss

    def g_loss(self, fake_out: Tensor) -> Tensor:
        return fake_out.mean()

    @torch.no_grad()
    def after_d_step(self, discriminator: nn.Module) -> None:
        if self._last_losses is None:
            raise RuntimeError("BEGAN.after_d_step needs a d_loss call first")
        real_loss, fake_loss = (mean_across_processes(t) for t in self._last_losses)
        balance = self.gamma * real_loss - fake_loss
        self.k.copy_((self.k + self.lambda_k * balance).clamp(0.0, 1.0))
        self.convergence.copy_(real_loss + balance.abs())

    def logs(self) -> dict[str, Tensor]:
        return {"began_k": self.k, "began_convergence": self.convergence}
