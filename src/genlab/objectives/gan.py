"""GAN objectives of Lucic et al. 2018 (Table 1), written on the discriminator's raw outputs.

An objective is an ``nn.Module`` (its state, BEGAN's k_t, is a buffer checkpointed with the
model) that answers, for ONE critic (make one instance per discriminator, see
``genlab.modules.adversarial.objective_per_critic``):

- ``d_loss(real_out, fake_out)``: the discriminator loss (minimised) from D's outputs;
- ``g_loss(fake_out, real_out=None)``: the generator loss (minimised); ``real_out`` is given
  when the objective is ``relativistic`` (its G loss compares fakes with reals);
- ``penalty(critic, real, fake)``: a term added to the D loss (zero by default);
- ``after_d_step(discriminator)``: called after every D update (WGAN clips, BEGAN moves k_t);
- ``logs()``: extra scalars to log (e.g. ``began_k``).

D outputs may have any shape with the batch first: scores (B,) or PatchGAN maps (B, 1, H, W);
the losses are means over all elements. A critic is any callable images -> outputs, e.g. a
discriminator, ``lambda x: D(x, y)`` for a conditional one, or one domain's D in CycleGAN; its
score of an image is the mean of that image's outputs, and the gradient penalty constrains the
gradient of that score, its norm taken per sample over all pixels and channels.

``discriminator_loss(critic, real, fake)`` and ``generator_loss(critic, fake, real)`` run the
critic and combine these answers; modules call them. Class attributes say what an objective
needs: ``relativistic`` (G's loss reads D on real data) and ``needs_autoencoder`` (BEGAN's
critic is an autoencoder; each network family names its own, ``model.autoencoder``).
Every log-sigmoid is a softplus of a logit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, autograd, nn

Critic = Callable[[Tensor], Tensor]  # images (B, C, H, W) -> outputs (B,) or (B, 1, H', W')


def critic_scores(outputs: Tensor) -> Tensor:
    """One score per sample (B,): the mean of each sample's outputs ((B,) stays as it is)."""
    return outputs.reshape(outputs.shape[0], -1).mean(1)


def input_gradient(critic: Critic, points: Tensor) -> Tensor:
    """grad_x score(x) at ``points`` (B, C, H, W), per sample (the score of a sample depends on
    that sample only when D has no batch norm). Differentiable (create_graph), for D updates."""
    points = points.detach().requires_grad_(True)
    scores = critic_scores(critic(points))  # (B,)
    (grad,) = autograd.grad(scores.sum(), points, create_graph=True)  # (B, C, H, W)
    return grad


def gradient_penalty(critic: Critic, points: Tensor) -> Tensor:
    """E (||grad_x score(x)|| - 1)^2 over ``points`` (B, C, H, W), the norm taken per sample
    over all pixels and channels (WGAN-GP, DRAGAN)."""
    norms = input_gradient(critic, points).flatten(1).norm(dim=1)  # (B,)
    return (norms - 1).pow(2).mean()


def mean_across_processes(value: Tensor) -> Tensor:
    """``value`` averaged over the processes of a distributed run (itself when there is one)."""
    if dist.is_available() and dist.is_initialized():
        value = value.clone()
        dist.all_reduce(value)
        value /= dist.get_world_size()
    return value


class GANObjective(nn.Module, ABC):
    """Defaults shared by every objective: no penalty, nothing after the D step, no extra logs,
    a G loss that reads fakes only, any critic."""

    relativistic: bool = False  # g_loss needs D's outputs on real data
    needs_autoencoder: bool = False  # the critic must be an autoencoder (BEGAN)

    @abstractmethod
    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        """The discriminator loss (scalar) from D's outputs on real and fake images."""

    @abstractmethod
    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        """The generator loss (scalar) from D's outputs on fakes (and on reals if
        ``relativistic``)."""

    def penalty(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        return real.new_zeros(())

    def after_d_step(self, discriminator: nn.Module) -> None:
        return None

    def logs(self) -> dict[str, Tensor]:
        return {}

    def discriminator_loss(
        self, critic: Critic, real: Tensor, fake: Tensor
    ) -> tuple[Tensor, Tensor]:
        """(L_D, penalty) for ``critic`` on real and fake images (B, C, H, W); the fakes are
        detached (D's loss never trains G). Minimise their sum; call ``after_d_step`` after the
        update."""
        fake = fake.detach()
        return self.d_loss(critic(real), critic(fake)), self.penalty(critic, real, fake)

    def generator_loss(self, critic: Critic, fake: Tensor, real: Tensor | None = None) -> Tensor:
        """L_G for ``critic`` on fakes (B, C, H, W); ``real`` (a batch of the same size) is
        read only by relativistic objectives, which need it."""
        real_out = None
        if self.relativistic:
            if real is None:
                raise ValueError(f"{type(self).__name__}.generator_loss needs the real batch")
            with torch.no_grad():
                real_out = critic(real)
        return self.g_loss(critic(fake), real_out)


class Minimax(GANObjective):
    """MM GAN (Goodfellow et al. 2014): D maximises log D(x) + log(1 - D(x~)); G minimises
    log(1 - D(x~)) = -softplus(D(x~))."""

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return F.softplus(-real_out).mean() + F.softplus(fake_out).mean()

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return -F.softplus(fake_out).mean()


class NonSaturating(Minimax):
    """NS GAN: MM's discriminator; G minimises -log D(x~) = softplus(-D(x~))."""

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return F.softplus(-fake_out).mean()


class LeastSquares(GANObjective):
    """LSGAN (Mao et al. 2017) with targets 0 (fake) / 1 (real) for D and 1 for G."""

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return (real_out - 1).pow(2).mean() + fake_out.pow(2).mean()

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return (fake_out - 1).pow(2).mean()


class Hinge(GANObjective):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018)."""

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return F.relu(1 - real_out).mean() + F.relu(1 + fake_out).mean()

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return -fake_out.mean()


class WGAN(GANObjective):
    """Wasserstein GAN (Arjovsky et al. 2017): a critic, its weights clipped to
    [-clip_value, clip_value] after every D step (no clipping when clip_value is None)."""

    def __init__(self, clip_value: float | None = 0.01):
        super().__init__()
        if clip_value is not None and not clip_value > 0:
            raise ValueError(f"loss.objective.clip_value={clip_value} must be > 0 (or null)")
        self.clip_value = clip_value

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return fake_out.mean() - real_out.mean()

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return -fake_out.mean()

    @torch.no_grad()
    def after_d_step(self, discriminator: nn.Module) -> None:
        if self.clip_value is not None:
            for param in discriminator.parameters():
                param.clamp_(-self.clip_value, self.clip_value)


def _check_penalty_weight(penalty_weight: float) -> float:
    if not penalty_weight >= 0:
        raise ValueError(f"loss.objective.penalty_weight={penalty_weight} must be >= 0")
    return penalty_weight


class WGANGP(WGAN):
    """WGAN-GP (Gulrajani et al. 2017): the WGAN critic loss plus
    penalty_weight * E (||grad D(xh)|| - 1)^2 at xh = e x + (1 - e) x~, e ~ U[0, 1] per sample."""

    def __init__(self, penalty_weight: float = 10.0):
        super().__init__(clip_value=None)
        self.penalty_weight = _check_penalty_weight(penalty_weight)

    def penalty(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        e = torch.rand(real.shape[0], *[1] * (real.dim() - 1), device=real.device)  # (B, 1, 1, 1)
        points = e * real + (1 - e) * fake.detach()  # (B, C, H, W)
        return self.penalty_weight * gradient_penalty(critic, points)


class DRAGAN(NonSaturating):
    """DRAGAN (Kodali et al. 2017): the NS GAN plus the same penalty at perturbed real points
    xh = x + perturb_scale * std(x) * u, u ~ U[0, 1) (std over the whole batch)."""

    def __init__(self, penalty_weight: float = 10.0, perturb_scale: float = 0.5):
        super().__init__()
        self.penalty_weight = _check_penalty_weight(penalty_weight)
        self.perturb_scale = perturb_scale

    def penalty(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor:
        points = real + self.perturb_scale * real.std() * torch.rand_like(real)  # (B, C, H, W)
        return self.penalty_weight * gradient_penalty(critic, points)


class BEGAN(GANObjective):
    """BEGAN (Berthelot et al. 2017). D is an autoencoder whose output is the per-sample L1
    reconstruction error L(v) (B,) (e.g. ``genlab.nets.lucic.LucicAutoencoder``).

    L_D = L(x) - k_t L(x~), L_G = L(x~); after each D step
    k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(x~)), 0, 1), with the batch means of the
    last D step (averaged over processes). M_global = L(x) + |gamma L(x) - L(x~)| is logged.
    """

    needs_autoencoder = True

    def __init__(self, gamma: float = 0.75, lambda_k: float = 1e-3, k_init: float = 0.0):
        super().__init__()
        if not 0 < gamma <= 1:
            raise ValueError(f"loss.objective.gamma={gamma} must be in (0, 1]")
        if not lambda_k >= 0:
            raise ValueError(f"loss.objective.lambda_k={lambda_k} must be >= 0")
        self.gamma = gamma
        self.lambda_k = lambda_k
        self.register_buffer("k", torch.tensor(float(k_init)))
        self.register_buffer("convergence", torch.tensor(float("nan")))
        self._last_losses: tuple[Tensor, Tensor] | None = None

    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        real_loss, fake_loss = real_out.mean(), fake_out.mean()
        self._last_losses = (real_loss.detach(), fake_loss.detach())
        return real_loss - self.k * fake_loss

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
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
