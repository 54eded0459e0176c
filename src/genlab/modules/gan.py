"""One LightningModule for every unconditional GAN: the objective is an object (``loss`` group).

The schedule lives here and only here. Every ``training_step`` takes one fresh real batch and
makes one discriminator update; the generator is updated on the same step when
``(d_steps - 1) % n_critic == 0`` (Lucic et al. 2018), so n_critic D steps per G step. Each
update has the shape of ``genlab.modules.adversarial.toggled_update``: toggled optimizer ->
zero_grad -> manual_backward -> [clip] -> step. The shared pieces (updates, EMA, spectral norm,
buffer broadcast, latents, optimizers) live in ``genlab.modules.adversarial``.

Work is counted in ``d_steps``, ``g_steps`` and ``images_seen`` (real images, all processes),
checkpointed buffers. Budgets: ``trainer.max_epochs`` (D passes over the training split, as
Lucic et al. count epochs) and/or ``max_g_steps``; training stops at whichever comes first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from lightning import LightningModule
from torch import Tensor, nn

from genlab.modules.adversarial import (
    COUNTERS,
    LATENT_PRIORS,
    apply_spectral_norm,
    broadcast_buffers,
    choose_critic,
    draw_latent,
    ema_update,
    log_counters,
    make_ema,
    optimizer_config,
    recompute_batch_norm,
    slerp,
    step_epoch_schedulers,
    toggled_update,
)
from genlab.modules.counters import register_counters
from genlab.objectives.gan import GANObjective
from genlab.utils.images import Grid

EMA_BN_SEED = 1234  # the latents that set the EMA generator's batch-norm statistics
EMA_BN_BATCH = 256


class GAN(LightningModule):
    """Generator + discriminator trained with ``objective`` (see ``genlab.objectives.gan``).

    ``discriminator`` / ``autoencoder`` are net factories; the critic is the autoencoder when
    the objective needs one (BEGAN), else the discriminator. ``optimizer`` (a partial, the
    optim group) builds both optimizers; ``g_optimizer`` / ``d_optimizer`` are keyword
    overrides for one network (e.g. ``{"lr": 4e-4}``). With ``ema_decay``, samples come from an
    exponential moving average of G, whose batch-norm statistics are recomputed for the
    averaged weights over ``ema_bn_samples`` fixed latents before it is used.

    Logged: ``train/d_loss`` (with the penalty), ``train/penalty``, ``train/g_loss``, the
    objective's extra scalars, and ``counters/{d_steps,g_steps,images_seen}``.
    """

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        objective: GANObjective,
        optimizer: Callable[..., torch.optim.Optimizer],
        image_shape: Sequence[int],
        autoencoder: Callable[..., nn.Module] | None = None,
        latent_dim: int = 64,
        latent_prior: str = "uniform",
        n_critic: int = 1,
        ema_decay: float | None = None,
        ema_bn_samples: int = 1024,
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
        if ema_bn_samples < 1:
            raise ValueError(f"model.ema_bn_samples={ema_bn_samples} must be >= 1")
        if max_g_steps is not None and max_g_steps < 1:
            raise ValueError(f"model.max_g_steps={max_g_steps} must be null or >= 1")
        self.automatic_optimization = False
        self.image_shape = tuple(int(v) for v in image_shape)
        self.latent_dim = latent_dim
        self.latent_prior = latent_prior
        self.num_classes = 0  # unconditional
        self.n_critic = n_critic
        self.ema_decay = ema_decay
        self.ema_bn_samples = ema_bn_samples
        self.grad_clip_val = grad_clip_val
        self.max_g_steps = max_g_steps
        self.generator = generator(image_shape=self.image_shape, latent_dim=latent_dim)
        critic = choose_critic(objective, discriminator, autoencoder)
        self.discriminator = critic(image_shape=self.image_shape)
        if spectral_norm:
            apply_spectral_norm(self.discriminator)
        self.objective = objective
        self.ema_generator = make_ema(self.generator) if ema_decay is not None else None
        self._ema_statistics_stale = True  # EMA weights moved since its batch norm was set
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

    def _ema_statistics_latents(self) -> Iterator[tuple[Tensor]]:
        """``ema_bn_samples`` latents from a fixed seed, in batches: the same on every process
        and every call, and the global RNG is left alone."""
        noise = torch.Generator().manual_seed(EMA_BN_SEED)
        for start in range(0, self.ema_bn_samples, EMA_BN_BATCH):
            num = min(EMA_BN_BATCH, self.ema_bn_samples - start)
            yield (
                draw_latent(self.latent_prior, num, self.latent_dim, "cpu", noise).to(self.device),
            )

    def sampling_generator(self) -> nn.Module:
        """The net samples come from: the EMA generator (its batch-norm statistics first
        recomputed for its weights if they moved) when EMA is on, else the trained one."""
        if self.ema_generator is None:
            return self.generator
        if self._ema_statistics_stale:
            recompute_batch_norm(self.ema_generator, self._ema_statistics_latents())
            self._ema_statistics_stale = False
        return self.ema_generator

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
        net = self.sampling_generator()
        was_training = net.training
        net.eval()
        images = net(z).clamp(0, 1)
        net.train(was_training)
        return images

    # ---- training ----------------------------------------------------------------------------
    def _discriminator_step(self, real: Tensor, d_opt: Any) -> dict[str, Tensor]:
        with toggled_update(self, d_opt, self.grad_clip_val) as step:
            with torch.no_grad():
                fake = self.generator(self.latent(real.shape[0]))  # (B, C, H, W)
            d_loss, penalty = self.objective.discriminator_loss(self.discriminator, real, fake)
            step(d_loss + penalty)
        self.objective.after_d_step(self.discriminator)
        return {"train/d_loss": (d_loss + penalty).detach(), "train/penalty": penalty.detach()}

    def _generator_step(self, real: Tensor, g_opt: Any) -> Tensor:
        with toggled_update(self, g_opt, self.grad_clip_val) as step:
            fake = self.generator(self.latent(real.shape[0]))  # (B, C, H, W)
            g_loss = self.objective.generator_loss(self.discriminator, fake, real)
            step(g_loss)
        if self.ema_generator is not None:
            ema_update(self.ema_generator, self.generator, self.ema_decay)
            self._ema_statistics_stale = True
        return g_loss.detach()

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real, _ = batch  # (B, C, H, W), labels unused
        d_opt, g_opt = self.optimizers()
        logs = self._discriminator_step(real, d_opt)
        self.d_steps += 1
        self.images_seen += real.shape[0] * self.trainer.world_size
        if (int(self.d_steps) - 1) % self.n_critic == 0:
            logs["train/g_loss"] = self._generator_step(real, g_opt)
            self.g_steps += 1
            if self.max_g_steps is not None and int(self.g_steps) >= self.max_g_steps:
                self.trainer.should_stop = True
        broadcast_buffers(self)
        logs.update({f"train/{k}": v for k, v in self.objective.logs().items()})
        self.log_dict(logs, prog_bar=True, batch_size=real.shape[0])
        log_counters(self, batch_size=real.shape[0])

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """Per-epoch LR schedules caught up (a resume from an epoch's last step)."""
        step_epoch_schedulers(self, self.current_epoch)

    def on_train_epoch_end(self) -> None:
        """Per-epoch LR schedules; every process ends the epoch with the EMA generator's
        batch-norm statistics recomputed for its weights (pictures are drawn on rank 0 only)."""
        step_epoch_schedulers(self, self.current_epoch + 1)
        self.sampling_generator()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._ema_statistics_stale = True

    def configure_optimizers(self) -> Any:
        """Two optimizers (D first, then G), each with its optional scheduler."""
        nets = (self.discriminator, self.generator)
        return [
            optimizer_config(self.optimizer_factory, net.parameters(), overrides, scheduler)
            for net, overrides, scheduler in zip(
                nets, self.optimizer_overrides, self.scheduler_factories, strict=True
            )
        ]

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
