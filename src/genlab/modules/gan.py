"""One LightningModule for every unconditional GAN: the objective is an object (``loss`` group).

The schedule lives here and only here. Every ``training_step`` takes one fresh real batch and
makes one discriminator update; the generator is updated on the same step when
``(d_steps - 1) % n_critic == 0`` (Lucic et al. 2018), so n_critic D steps per G step. Each
update: toggled optimizer -> zero_grad -> manual_backward -> [clip] -> step.

Work is counted in ``d_steps``, ``g_steps`` and ``images_seen`` (real images, all processes),
checkpointed buffers. Budgets: ``trainer.max_epochs`` (D passes over the training split, as
Lucic et al. count epochs) and/or ``max_g_steps``; training stops at whichever comes first.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.distributed as dist
from lightning import LightningModule
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as add_spectral_norm

from genlab.modules.counters import counter_values, register_counters
from genlab.utils.images import Grid

COUNTERS = ("d_steps", "g_steps", "images_seen")
LATENT_PRIORS = ("normal", "uniform")


def draw_latent(prior: str, num: int, dim: int, device: Any, generator: Any = None) -> Tensor:
    """z (num, dim) from N(0, I) (``normal``) or U(-1, 1) (``uniform``)."""
    if prior == "normal":
        return torch.randn(num, dim, device=device, generator=generator)
    return torch.rand(num, dim, device=device, generator=generator) * 2 - 1


@torch.no_grad()
def ema_update(average: nn.Module, model: nn.Module, decay: float) -> None:
    """average <- decay * average + (1 - decay) * model for parameters; buffers (batch-norm
    statistics) are copied."""
    for avg, new in zip(average.parameters(), model.parameters(), strict=True):
        avg.lerp_(new, 1 - decay)
    for avg, new in zip(average.buffers(), model.buffers(), strict=True):
        avg.copy_(new)


def slerp(z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between z0, z1 (D,) at fractions t (S,) -> (S, D); linear where
    the two are (anti)parallel."""
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm())
    omega = torch.arccos(cos.clamp(-1, 1))
    if torch.sin(omega).abs() < 1e-6:
        return torch.lerp(z0, z1, t[:, None])
    w0 = torch.sin((1 - t) * omega) / torch.sin(omega)  # (S,)
    w1 = torch.sin(t * omega) / torch.sin(omega)  # (S,)
    return w0[:, None] * z0 + w1[:, None] * z1


@torch.no_grad()
def broadcast_buffers(module: nn.Module) -> None:
    """Give every process rank 0's buffers (batch-norm statistics), as DDP does before each
    forward; after the last update of a step each rank has moved them with its own batch."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on every conv and linear weight."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            add_spectral_norm(layer)
    return module


class GAN(LightningModule):
    """Generator + discriminator trained with ``objective`` (see ``genlab.objectives.gan``).

    ``optimizer`` (a partial, the optim group) builds both optimizers; ``g_optimizer`` /
    ``d_optimizer`` are keyword overrides for one network (e.g. ``{"lr": 4e-4}``).

    Logged: ``train/d_loss`` (with the penalty), ``train/penalty``, ``train/g_loss``, the
    objective's extra scalars, and ``counters/{d_steps,g_steps,images_seen}``.
    """

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        objective: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        image_shape: Sequence[int],
        latent_dim: int = 64,
        latent_prior: str = "uniform",
        n_critic: int = 1,
        ema_decay: float | None = None,
        spectral_norm: bool = False,
        grad_clip_val: float | None = None,
        max_g_steps: int | None = None,
        g_optimizer: dict[str, Any] | None = None,
        d_optimizer: dict[str, Any] | None = None,
        g_scheduler: Callable[..., Any] | None = None,
        d_scheduler: Callable[..., Any] | None = None,
        num_picture_samples: int = 64,
        interpolation_pairs: int = 4,
        interpolation_steps: int = 10,
    ):
        super().__init__()
        if latent_prior not in LATENT_PRIORS:
            raise ValueError(f"model.latent_prior={latent_prior!r} must be one of {LATENT_PRIORS}")
        if n_critic < 1:
            raise ValueError(f"model.n_critic={n_critic} must be >= 1")
        if ema_decay is not None and not 0 <= ema_decay < 1:
            raise ValueError(f"model.ema_decay={ema_decay} must be null or in [0, 1)")
        if max_g_steps is not None and max_g_steps < 1:
            raise ValueError(f"model.max_g_steps={max_g_steps} must be null or >= 1")
        self.automatic_optimization = False
        self.image_shape = tuple(int(v) for v in image_shape)
        self.latent_dim = latent_dim
        self.latent_prior = latent_prior
        self.num_classes = 0  # unconditional
        self.n_critic = n_critic
        self.ema_decay = ema_decay
        self.grad_clip_val = grad_clip_val
        self.max_g_steps = max_g_steps
        self.generator = generator(image_shape=self.image_shape, latent_dim=latent_dim)
        self.discriminator = discriminator(image_shape=self.image_shape)
        if spectral_norm:
            apply_spectral_norm(self.discriminator)
        self.objective = objective
        self.ema_generator = (
            copy.deepcopy(self.generator).requires_grad_(False) if ema_decay is not None else None
        )
        self.optimizer_factory = optimizer
        self.optimizer_overrides = (dict(d_optimizer or {}), dict(g_optimizer or {}))
        self.scheduler_factories = (d_scheduler, g_scheduler)
        register_counters(self, *COUNTERS)
        noise = torch.Generator().manual_seed(0)
        self.register_buffer(
            "fixed_z", draw_latent(latent_prior, num_picture_samples, latent_dim, "cpu", noise)
        )
        self.register_buffer(
            "fixed_pairs",
            draw_latent(latent_prior, 2 * interpolation_pairs, latent_dim, "cpu", noise),
        )
        self.interpolation_steps = interpolation_steps

    # ---- the model ---------------------------------------------------------------------------
    def latent(self, num: int) -> Tensor:
        """z (num, latent_dim) from the prior, on the module's device."""
        return draw_latent(self.latent_prior, num, self.latent_dim, self.device)

    @property
    def sampling_generator(self) -> nn.Module:
        """The EMA generator when EMA is on, else the trained one."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    @property
    def progress_steps(self) -> int:
        """Generator updates so far: the step count of callbacks' ``every_n_steps``."""
        return int(self.g_steps)

    @torch.no_grad()
    def sample(self, num_samples: int, y: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        """G(z) for z from the prior (or the given z (N, D)), in eval mode: (N, C, H, W) in
        [0, 1]."""
        if y is not None:
            raise ValueError("this GAN is unconditional: it takes no labels")
        z = self.latent(num_samples) if z is None else z
        net = self.sampling_generator
        was_training = net.training
        net.eval()
        images = net(z).clamp(0, 1)
        net.train(was_training)
        return images

    # ---- training ----------------------------------------------------------------------------
    def _update(self, optimizer: Any, loss: Tensor) -> None:
        """One optimizer step on ``loss``; the caller has toggled ``optimizer``."""
        optimizer.zero_grad()
        self.manual_backward(loss)
        if self.grad_clip_val is not None:
            self.clip_gradients(optimizer, self.grad_clip_val, gradient_clip_algorithm="norm")
        optimizer.step()

    def _discriminator_step(self, real: Tensor, d_opt: Any) -> dict[str, Tensor]:
        with self.toggled_optimizer(d_opt):
            with torch.no_grad():
                fake = self.generator(self.latent(real.shape[0]))  # (B, C, H, W)
            d_loss = self.objective.d_loss(self.discriminator(real), self.discriminator(fake))
            penalty = self.objective.penalty(self.discriminator, real, fake)
            self._update(d_opt, d_loss + penalty)
        self.objective.after_d_step(self.discriminator)
        return {"train/d_loss": (d_loss + penalty).detach(), "train/penalty": penalty.detach()}

    def _generator_step(self, batch_size: int, g_opt: Any) -> Tensor:
        with self.toggled_optimizer(g_opt):
            fake = self.generator(self.latent(batch_size))  # (B, C, H, W)
            g_loss = self.objective.g_loss(self.discriminator(fake))
            self._update(g_opt, g_loss)
        if self.ema_generator is not None:
            ema_update(self.ema_generator, self.generator, self.ema_decay)
        return g_loss.detach()

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real, _ = batch  # (B, C, H, W), labels unused
        d_opt, g_opt = self.optimizers()
        logs = self._discriminator_step(real, d_opt)
        self.d_steps += 1
        self.images_seen += real.shape[0] * self.trainer.world_size
        if (int(self.d_steps) - 1) % self.n_critic == 0:
            logs["train/g_loss"] = self._generator_step(real.shape[0], g_opt)
            self.g_steps += 1
            if self.max_g_steps is not None and int(self.g_steps) >= self.max_g_steps:
                self.trainer.should_stop = True
        broadcast_buffers(self)
        logs.update({f"train/{k}": v for k, v in self.objective.logs().items()})
        self.log_dict(logs, prog_bar=True, batch_size=real.shape[0])
        self.log_dict(
            {f"counters/{k}": float(v) for k, v in counter_values(self, *COUNTERS).items()},
            batch_size=real.shape[0],
        )

    def on_train_epoch_end(self) -> None:
        schedulers = self.lr_schedulers()
        if schedulers is not None:
            for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
                scheduler.step()

    def configure_optimizers(self) -> Any:
        """Two optimizers (D first, then G), each with its optional scheduler."""
        configs = []
        nets = (self.discriminator, self.generator)
        for net, overrides, make_sched in zip(
            nets, self.optimizer_overrides, self.scheduler_factories, strict=True
        ):
            optimizer = self.optimizer_factory(params=net.parameters(), **overrides)
            config: dict[str, Any] = {"optimizer": optimizer}
            if make_sched is not None:
                config["lr_scheduler"] = make_sched(optimizer=optimizer)
            configs.append(config)
        return configs

    # ---- pictures ----------------------------------------------------------------------------
    @torch.no_grad()
    def pictures(self, batch: tuple[Tensor, Tensor]) -> dict[str, Grid]:
        """Fixed-noise samples (8 per row) and latent interpolations: for each fixed pair of
        latents one row of linear, then one row of spherical interpolation."""
        t = torch.linspace(0, 1, self.interpolation_steps, device=self.device)  # (S,)
        rows = []
        for z0, z1 in self.fixed_pairs.view(-1, 2, self.latent_dim):
            rows += [torch.lerp(z0, z1, t[:, None]), slerp(z0, z1, t)]  # (S, D) each
        z = torch.cat(rows)  # (2 * pairs * S, D)
        return {
            "samples": Grid(self.sample(len(self.fixed_z), z=self.fixed_z), 8),
            "interpolation": Grid(self.sample(len(z), z=z), self.interpolation_steps),
        }
